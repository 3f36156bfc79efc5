"""Whether this CPU computes BF16 natively, and what ``infer_precision`` (fp32 | bf16 | auto) means here.

Native BF16 is the BF16 dot-product instructions oneDNN's BF16 convolutions use: AVX512-BF16
(``avx512_bf16``, Intel Cooper Lake / Sapphire Rapids, AMD Zen 4 and later) or AMX-BF16 (``amx_bf16``,
Sapphire Rapids and later), as the kernel lists them in /proc/cpuinfo's ``flags``. Without them oneDNN
would convert BF16 to float32 and back around float32 kernels: slower than float32 and less exact, so
``bf16`` is refused there and ``auto`` means ``fp32``.

The CPU's flags are read from /proc/cpuinfo (text may be passed in, for tests of another CPU); oneDNN's
own ISA query is not used because asking it fixes its ISA, which must stay settable until the runtime has
decided whether to cap it at AVX2 (src.runtime.cap_onednn_isa).
"""
from pathlib import Path

from src.errors import UserError

PRECISIONS = ("fp32", "bf16", "auto")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo_text=None):
    """The set of flags of the first processor in ``cpuinfo_text`` (default: this machine's /proc/cpuinfo)."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = CPUINFO.read_text()
        except OSError:
            return set()
    for line in cpuinfo_text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bf16_support(cpuinfo_text=None):
    """(native, description): whether the CPU has native BF16, and which of BF16_FLAGS it has or lacks."""
    found = [f for f in BF16_FLAGS if f in cpu_flags(cpuinfo_text)]
    if found:
        return True, f"native BF16 ({', '.join(found)})"
    return False, f"no native BF16 (neither {' nor '.join(BF16_FLAGS)} in {CPUINFO}'s flags)"


def bf16_missing(device_target="CPU", conv_impl="fast", isa_capped=False, cpuinfo_text=None):
    """(missing, description): why our BF16 convolutions cannot run here (None when they can), and the CPU's
    BF16 capability (bf16_support). They need the CPU, our oneDNN op (conv_impl fast), oneDNN not capped at
    AVX2 and native BF16. Shared by BF16 inference (infer_precision) and BF16 training (amp_level on CPU)."""
    native, description = bf16_support(cpuinfo_text)
    if device_target != "CPU":
        return f"device_target={device_target}: our BF16 convolutions run on the CPU only", description
    if conv_impl != "fast":
        return "our oneDNN op is not running (conv_impl native, or the op not built: 'make ops')", description
    if isa_capped:
        return "oneDNN is capped at AVX2 (cpu_isa_cap=on), which has no BF16 instructions", description
    if not native:
        return f"this CPU has {description}", description
    return None, description


def resolve_infer_precision(requested, device_target="CPU", conv_impl="fast", isa_capped=False,
                            cpuinfo_text=None):
    """(precision, reason): ``fp32`` or ``bf16`` for the inference network, from ``infer_precision``.

    ``bf16`` needs what bf16_missing checks; when one is missing, ``bf16`` is a UserError naming it and
    ``auto`` is ``fp32``.
    """
    if requested not in PRECISIONS:
        raise UserError(f"infer_precision '{requested}' is not one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32", "requested"
    missing, description = bf16_missing(device_target, conv_impl, isa_capped, cpuinfo_text)
    if missing is None:
        return "bf16", description
    if requested == "bf16":
        raise UserError(f"--infer_precision=bf16: {missing}; use --infer_precision=fp32 (or auto)")
    return "fp32", f"auto: {missing}"
