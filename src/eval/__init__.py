"""Evaluation: evaluating a checkpoint or an exported model on a dataset split (evaluate) and the result
files it leaves (outputs). The loop is src.inference.loop's, the metric src.metrics'."""
