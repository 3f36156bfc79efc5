"""The distributed launchers behind scripts/run_distribute_train*.sh: reading an HCCL rank table,
starting and stopping the ranks (signals, process groups), wrapping msrun, naming a rank that died."""
