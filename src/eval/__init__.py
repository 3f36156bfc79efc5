"""Evaluation: the sliding-window loop (loop), clip/video accuracy (metrics), result files (outputs), and
evaluating a checkpoint or an exported model on a dataset split (evaluate)."""
