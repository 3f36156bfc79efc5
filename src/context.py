"""The one place that sets up MindSpore's device context, for every entry script, test and benchmark.

On CPU, MindSpore 2.10's bundled oneDNN picks its reference kernel for 3-D convolutions (about
1 GFLOP/s). Capping oneDNN at AVX2 before its first kernel is built makes it use im2col + JIT GEMM:
60-250x faster, with the model unchanged (PORTING_NOTES §1, "Fix 1"). The cap is not wanted when our
own fast convolution op runs (it slows that op), so it is applied only when native convolutions run.
"""
import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from src.errors import UserError

log = logging.getLogger("resnet3d")

DNNL_CPU_ISA_AVX2 = 0x7
ISA_CAP_ENV = "RESNET3D_CPU_ISA_CAP"      # auto | on | off: overrides the config key
CONV_IMPL_ENV = "RESNET3D_CONV_IMPL"      # auto | fast | native: overrides the config key

_state = {"isa_cap": None}


@dataclass
class RuntimeInfo:
    device_target: str
    mode: str
    conv_impl: str          # what runs: "fast" or "native"
    isa_cap: bool           # whether oneDNN is capped at AVX2

    def describe(self):
        extra = ""
        if self.device_target == "CPU":
            extra = f", conv={self.conv_impl}, oneDNN {'capped at AVX2' if self.isa_cap else 'uncapped'}"
        return f"device={self.device_target}, mode={self.mode}{extra}"


def _dnnl_library():
    import mindspore

    return Path(mindspore.__file__).resolve().parent / "lib" / "libdnnl.so.3"


def cap_onednn_isa():
    """Cap MindSpore's bundled oneDNN at AVX2. Returns True when the cap is in force.

    Must run before MindSpore builds its first oneDNN kernel; later calls report False.
    """
    if _state["isa_cap"] is not None:
        return _state["isa_cap"]
    lib_path = _dnnl_library()
    try:
        lib = ctypes.CDLL(str(lib_path))
        status = lib.dnnl_set_max_cpu_isa(ctypes.c_int(DNNL_CPU_ISA_AVX2))
    except (OSError, AttributeError) as err:
        log.warning("could not cap oneDNN at AVX2 (%s): CPU convolutions will be slow", err)
        status = -1
    _state["isa_cap"] = status == 0
    if status != 0:
        log.warning("oneDNN AVX2 cap not applied (status %s): a oneDNN kernel was built before "
                    "setup_context(); CPU convolutions will be slow", status)
    return _state["isa_cap"]


def resolve_conv_impl(device_target, conv_impl):
    """Which 3-D convolution runs: 'fast' (our oneDNN op, CPU only) or 'native'."""
    conv_impl = os.environ.get(CONV_IMPL_ENV, conv_impl) or "auto"
    if conv_impl not in ("auto", "fast", "native"):
        raise UserError(f"conv_impl '{conv_impl}' is not one of auto, fast, native")
    if device_target != "CPU" or conv_impl == "native":
        return "native"
    from src.ops import fast_conv3d_status

    available, reason = fast_conv3d_status()
    if available:
        return "fast"
    if conv_impl == "fast":
        log.warning("conv_impl=fast requested but the fast op is unavailable (%s); using native "
                    "convolutions (run 'make setup' to build it)", reason)
    return "native"


def setup_context(device_target="CPU", mode="GRAPH", device_id=None, conv_impl="auto",
                  cpu_isa_cap="auto", seed=None):
    """Set MindSpore's context and the CPU convolution path; return a :class:`RuntimeInfo`."""
    import mindspore as ms

    if device_target not in ("CPU", "GPU", "Ascend"):
        raise UserError(f"device_target '{device_target}' is not one of CPU, GPU, Ascend")
    mode = str(mode).upper()
    if mode not in ("GRAPH", "PYNATIVE"):
        raise UserError(f"mode '{mode}' is not one of GRAPH, PYNATIVE")
    impl = resolve_conv_impl(device_target, conv_impl)
    capped = False
    if device_target == "CPU":
        cap = os.environ.get(ISA_CAP_ENV, str(cpu_isa_cap)).lower()
        if cap in ("on", "true") or (cap == "auto" and impl == "native"):
            capped = cap_onednn_isa()
    kwargs = {"mode": ms.GRAPH_MODE if mode == "GRAPH" else ms.PYNATIVE_MODE}
    try:
        ms.set_device(device_target, device_id) if device_id is not None and device_target != "CPU" \
            else ms.set_device(device_target)
    except (RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        raise UserError(f"device_target={device_target} is not usable here ({reason}); "
                        f"pass --device_target=CPU to run on the CPU") from None
    ms.set_context(**kwargs)
    if seed is not None:
        ms.set_seed(seed)
    info = RuntimeInfo(device_target, mode, impl, capped)
    log.info("runtime: %s", info.describe())
    return info


def setup_from_config(cfg):
    """setup_context() with the config's keys."""
    device_id = int(os.environ.get("DEVICE_ID", cfg.get("device_id", 0)))
    return setup_context(cfg.get("device_target", "CPU"), cfg.get("mode", "GRAPH"), device_id,
                         cfg.get("conv_impl", "auto"), cfg.get("cpu_isa_cap", "auto"), cfg.get("seed"))
