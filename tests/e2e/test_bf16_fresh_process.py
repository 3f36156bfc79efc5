"""The BF16 and INT8 tests need a process whose oneDNN was never capped at AVX2; in the whole suite an earlier
test's native convolutions cap it (the cap is per process and final), so there they skip. This runs them again in
a process of their own, where the CPU has native BF16 (INT8 dot products) and the fast op is built: they must
pass, none skipped."""
import subprocess
import sys

import pytest

from src.config import REPO_ROOT
from src.ops.fused_conv3d import status
from src.ops.isa import bf16_support, int8_support

pytestmark = pytest.mark.slow


def _passes_in_a_fresh_process(*test_files):
    """``test_files`` in a pytest process of their own: they must pass, none skipped."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *test_files],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    summary = res.stdout.strip().splitlines()[-1]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "skipped" not in summary and "passed" in summary, res.stdout[-3000:]


def test_bf16_tests_pass_in_a_fresh_process():  # inference and training
    native, why = bf16_support()
    if not native:
        pytest.skip(f"this CPU has {why}: the BF16 paths are tested for refusal only")
    if not status()[0]:
        pytest.skip(f"fused op unavailable: {status()[1]}")
    _passes_in_a_fresh_process("tests/integration/test_bf16_inference.py", "tests/integration/test_bf16_training.py")


def test_int8_tests_pass_in_a_fresh_process():  # the oneDNN INT8 op and the INT8 network
    fast, why = int8_support()
    if not fast:
        pytest.skip(f"this CPU has {why}: the INT8 op refuses it and the emulation runs (tested in the suite)")
    if not status()[0]:
        pytest.skip(f"fused op unavailable: {status()[1]}")
    _passes_in_a_fresh_process("tests/integration/test_int8_op.py", "tests/unit/test_quant.py",
                               "tests/integration/test_int8_program.py")
