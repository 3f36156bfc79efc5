"""The training engine: the loop (fit), its callbacks, the state saved in every checkpoint, fault injection."""
