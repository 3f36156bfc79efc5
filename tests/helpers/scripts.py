"""Running the shell scripts of scripts/ as a user does: bash, the repository root, PYTHON=this interpreter."""
import os
import subprocess
import sys

from src.config import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
TEST_DATA = REPO_ROOT / "tests" / "data"


def script_env(**env):
    """os.environ with PYTHON set to this interpreter and ``env`` (values as strings) on top."""
    return dict(os.environ, PYTHON=sys.executable, **{k: str(v) for k, v in env.items()})


def run_script(script, *args, cwd=REPO_ROOT, timeout=600, **env):
    """``bash scripts/<script> args...`` to its end; returns the CompletedProcess (text output)."""
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          env=script_env(**env), cwd=cwd, timeout=timeout)
