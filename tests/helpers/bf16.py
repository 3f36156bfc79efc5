"""Shared by the BF16 tests: run a test only where our BF16 convolutions can run in this process."""
import pytest

from src.ops.fused_conv3d import status
from src.ops.isa import bf16_support

NATIVE, CPU = bf16_support()

AVAILABLE, REASON = status()


@pytest.fixture
def onednn_not_capped():
    """oneDNN capped at AVX2 (by an earlier setup with native convolutions in this process) has no BF16."""
    from src.runtime import _state

    if _state["isa_cap"]:
        pytest.skip("oneDNN was capped at AVX2 earlier in this test process")


def needs_bf16(test):
    """Runs ``test`` where the fast op is built, the CPU has native BF16 and oneDNN is not capped (the module
    using it imports ``onednn_not_capped`` too, so pytest finds the fixture)."""
    test = pytest.mark.usefixtures("onednn_not_capped")(test)
    return pytest.mark.skipif(not (AVAILABLE and NATIVE), reason=f"fast op: {REASON}; CPU: {CPU}")(test)
