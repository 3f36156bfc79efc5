"""The engine: running a network (or any predictor) over batches, for training, evaluation and deployment."""
