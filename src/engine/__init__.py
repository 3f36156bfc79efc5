"""Running a network over batches: the training loop, its state and policies, evaluation and predictors."""
