"""Inference: predictors (a checkpoint's inference network, ONNX Runtime, a MINDIR: clips -> probabilities) and
the loop that runs one over every view of a dataset split (eval, ONNX eval, feature extraction, in-training
evaluation). Training's engine is src.engine; nothing here imports it, nor it this."""
