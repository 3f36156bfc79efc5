"""python -m src.launch NAME ARGS...: the launcher src/launch/NAME.py, run as scripts/common.sh's launch does."""
import importlib
import sys

from src.launch.processes import run_launcher

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    sys.exit(run_launcher(importlib.import_module(f"src.launch.{name}").launch, args))
