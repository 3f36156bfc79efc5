"""The launchers behind scripts/: the two distributed training jobs (an HCCL rank table, msrun), the Ascend-310
inference steps and the demo; each is ``python -m src.launch NAME ARGS``, see docs/launch.md."""
