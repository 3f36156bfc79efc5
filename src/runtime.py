"""The runtime: MindSpore's device context, the CPU convolution path and the communication group,
set up once per entry script (:func:`setup_runtime`) and passed down as a :class:`Runtime`.

On CPU, MindSpore 2.10's bundled oneDNN picks its reference kernel for 3-D convolutions (about
1 GFLOP/s). Capping oneDNN at AVX2 before its first kernel is built makes it use im2col + JIT GEMM:
60-250x faster, with the model unchanged. The cap is not wanted when our
own fast convolution op runs (it slows that op), so it is applied only when native convolutions run.
"""
import ctypes
import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from src.config import environment_value
from src.errors import UserError
from src.ops.isa import bf16_missing, resolve_infer_precision

log = logging.getLogger("resnet3d")

DNNL_CPU_ISA_AVX2 = 0x7
# auto | on | off and auto | fast | native, for callers of setup_context that choose nothing (None: tests,
# benchmarks); entry scripts get them through the config's precedence rule (src.config.ENVIRONMENT)

_state = {"isa_cap": None}


@dataclass(frozen=True)
class Runtime:
    """What an entry script set up, passed down to whatever needs to know it."""
    device_target: str
    mode: str
    conv_impl: str          # what runs: "fast" or "native"
    isa_cap: bool           # whether oneDNN is capped at AVX2
    device_id: int = 0
    rank_id: int = 0
    rank_size: int = 1
    infer_precision: str = "fp32"  # of the inference network: "fp32" or "bf16" (src.ops.isa)
    bf16_missing: str | None = "not set up"  # why our BF16 convolutions cannot run here; None: they can

    @property
    def is_main(self):
        return self.rank_id == 0

    def describe(self):
        extra = ""
        if self.device_target == "CPU":
            extra = f", conv={self.conv_impl}, oneDNN {'capped at AVX2' if self.isa_cap else 'uncapped'}"
            if self.infer_precision != "fp32":
                extra += f", inference in {self.infer_precision.upper()}"
        else:
            extra = f", device_id={self.device_id}"
        if self.rank_size > 1:
            extra += f", rank {self.rank_id} of {self.rank_size}"
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
    """Which 3-D convolution runs: 'fast' (our oneDNN op, CPU only) or 'native'. ``conv_impl`` None (a
    caller that chose nothing: tests, benchmarks): RESNET3D_CONV_IMPL, else auto."""
    if conv_impl is None:
        conv_impl = environment_value("conv_impl") or "auto"
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


def setup_context(device_target="CPU", mode="GRAPH", device_id=0, conv_impl=None, cpu_isa_cap=None,
                  seed=None, distributed=False, infer_precision="fp32"):
    """Set MindSpore's context, the CPU convolution path and (``distributed``) the communication group.
    ``infer_precision`` (fp32 | bf16 | auto) is resolved for this CPU (src.ops.isa; an impossible bf16 is a
    UserError).

    ``conv_impl`` / ``cpu_isa_cap`` None: the environment's RESNET3D_CONV_IMPL / RESNET3D_CPU_ISA_CAP, else
    auto (an entry script's config has already applied the environment, below its command line).
    Returns a :class:`Runtime`. Entry scripts call :func:`setup_runtime` once; tests and benchmarks may call
    this directly.
    """
    import mindspore as ms

    device_target = _set_device(device_target, device_id)
    impl = resolve_conv_impl(device_target, conv_impl)
    capped = False
    if device_target == "CPU":
        cap = str(cpu_isa_cap if cpu_isa_cap is not None else environment_value("cpu_isa_cap") or "auto").lower()
        if cap in ("on", "true") or (cap == "auto" and impl == "native"):
            capped = cap_onednn_isa()
    ms.set_context(mode=ms.GRAPH_MODE if mode == "GRAPH" else ms.PYNATIVE_MODE)
    if seed is not None:
        ms.set_seed(seed)
    # the cap lasts for the process: an earlier setup may have applied it
    capped_now = capped or bool(_state["isa_cap"])
    precision, why = resolve_infer_precision(infer_precision, device_target, impl, capped_now)
    if infer_precision == "auto":
        log.info("infer_precision=auto: %s (%s)", precision, why)
    rank_id, rank_size = _init_distributed() if distributed else (0, 1)
    info = Runtime(device_target, mode, impl, capped, device_id, rank_id, rank_size, precision,
                   bf16_missing(device_target, impl, capped_now)[0])
    log.debug("runtime: %s", info.describe())  # entry scripts print it where it matters (training, evaluation)
    return info


def device_candidates():
    """What device_target=auto tries, in order, with why: an Ascend NPU, an NVIDIA GPU (their device files),
    and the CPU, which is always there."""
    found = []
    npus = glob.glob("/dev/davinci[0-9]*")
    if npus:
        found.append(("Ascend", f"{len(npus)} Ascend NPU(s) under /dev/davinci*"))
    gpus = glob.glob("/dev/nvidia[0-9]*")
    if gpus:
        found.append(("GPU", f"{len(gpus)} NVIDIA GPU(s) under /dev/nvidia*"))
    return found + [("CPU", "no Ascend NPU (/dev/davinci*) or NVIDIA GPU (/dev/nvidia*) usable here")]


def _try_set_device(device_target, device_id):
    """None when MindSpore accepted the device, else the reason it gave."""
    import mindspore as ms

    try:
        if device_target == "CPU":
            ms.set_device(device_target)
        else:
            ms.set_device(device_target, device_id)
    except (RuntimeError, ValueError) as err:
        return str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
    return None


def _set_device(device_target, device_id):
    """Set MindSpore's device; ``auto`` takes the first usable of device_candidates() and says which and why.
    An explicit device that does not work is an error."""
    if device_target != "auto":
        reason = _try_set_device(device_target, device_id)
        if reason is not None:
            raise UserError(f"device_target={device_target} is not usable here ({reason}); pass "
                            f"--device_target=CPU (or auto) to run on the CPU")
        return device_target
    failed = []
    for candidate, why in device_candidates():
        reason = _try_set_device(candidate, device_id)
        if reason is None:
            note = f"; {'; '.join(failed)}" if failed else ""
            log.info("device_target=auto: %s (%s%s)", candidate, why, note)
            return candidate
        failed.append(f"{candidate} not usable: {reason}")
    raise UserError(f"device_target=auto: no device is usable ({'; '.join(failed)})")


def _init_distributed():
    """(rank_id, rank_size) of a data-parallel job started by msrun or the rank-table launcher."""
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank_size = get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=rank_size)
    return get_rank(), rank_size


def setup_runtime(placement, runtime, seed, infer_precision, *, device_target=None, conv_impl=None,
                  distributed=None, mode=None):
    """The one runtime set-up of an entry script, from its config's ``placement`` and ``runtime`` sections, the
    seed and the requested ``infer_precision`` (e.g. ``cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision``).

    ``device_target`` / ``conv_impl`` / ``mode`` override the sections where a script knows better (ONNX
    evaluation runs only the input pipeline in MindSpore: CPU; export writes native convolutions; gradients run
    op by op: PYNATIVE; a script that never runs the inference network passes infer_precision "fp32").
    ``distributed`` defaults to placement.run_distribute. ``num_workers: auto`` is resolved where a dataset is
    built (resolve_num_workers).
    """
    return setup_context(device_target or placement.device_target, mode or runtime.mode, runtime.device_id,
                         conv_impl or runtime.conv_impl, runtime.cpu_isa_cap, seed,
                         placement.run_distribute if distributed is None else distributed, infer_precision)


MAX_AUTO_WORKERS = 8
_said_workers = set()


def resolve_num_workers(value, rank_size=1) -> int:
    """The config's num_workers as a number: ``auto`` -> auto_num_workers (said once per process)."""
    return auto_num_workers(rank_size) if value == "auto" else int(value)


def auto_num_workers(rank_size, cores=None):
    """Input workers per rank: this host's cores shared by the ranks on it (NNODES hosts share the job),
    at least 1, at most MAX_AUTO_WORKERS."""
    cores = cores or len(os.sched_getaffinity(0))
    nodes = int(os.environ.get("NNODES", "1") or 1)
    local_ranks = max(1, -(-rank_size // max(1, nodes)))
    workers = max(1, min(MAX_AUTO_WORKERS, cores // local_ranks))
    if (workers, cores, local_ranks) not in _said_workers:
        _said_workers.add((workers, cores, local_ranks))
        log.info("input workers: %d per rank (num_workers=auto: %d cores / %d rank(s) on this host)", workers,
                 cores, local_ranks)
    return workers


def onnx_device(device_target, explicit=False):
    """Where ONNX Runtime runs an ONNX model: on the GPU when the config says GPU, else on the CPU, whatever
    device the config names for training; only an Ascend asked for on the command line is refused."""
    if device_target == "GPU":
        return "GPU"
    if device_target == "Ascend" and explicit:
        raise UserError("ONNX models run on ONNX Runtime (CPU or GPU), not on Ascend: pass --device_target=CPU "
                        "or GPU, or run the MINDIR export on Ascend (scripts/run_infer_310.sh)")
    return "CPU"
