"""What the tests share (nothing here is imported by src/):

tiny.py             the one tiny configuration (TINY, tiny_options, TINY_RUN_OPTIONS, tiny_run_args,
                    tiny_data_config), tiny datasets and checkpoints made with the suite's own commands
media.py            frame folders, a noise video and an annotated frame dataset written directly
torch_reference.py  our PyTorch 3D-ResNet, the reference the MindSpore model must reproduce
nets.py             a seeded ResNet-10, parameter copying, relative error
scripts.py          running scripts/*.sh as a user does
launchers.py        driving the distributed launchers and finding their processes
fixtures.py         the CPU runtime and the shared fixtures (tiny_dataset, tiny_args, graph_mode, mount_tmpfs)
workspaces.py       session-wide workspaces shared by a fast and a slow test file
"""
