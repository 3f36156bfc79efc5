"""Whether this CPU computes BF16 natively, and what ``infer_precision`` (fp32 | bf16 | auto) means here.

Native BF16 is the BF16 dot-product instructions oneDNN's BF16 convolutions use: AVX512-BF16
(``avx512_bf16``, Intel Cooper Lake / Sapphire Rapids, AMD Zen 4 and later) or AMX-BF16 (``amx_bf16``,
Sapphire Rapids and later), as the kernel lists them in /proc/cpuinfo's ``flags``. Without them oneDNN
would convert BF16 to float32 and back around float32 kernels: slower than float32 and less exact, so
``bf16`` is refused there and ``auto`` means ``fp32``.

The CPU's flags are read from /proc/cpuinfo (text may be passed in, for tests of another CPU); oneDNN's
own ISA query is not used because asking it fixes its ISA, which must stay settable until the runtime has
decided whether to cap it at AVX2 (src.runtime.cap_onednn_isa).

oneDNN also takes a cap from the environment: ONEDNN_MAX_CPU_ISA (or the older DNNL_MAX_CPU_ISA; the first
wins), read once, at its first use, case-insensitive; MindSpore's bundled oneDNN reads both. A cap below
AVX512_CORE_BF16 (e.g. AVX512_CORE_VNNI, what an Ice Lake has, or AVX2) leaves oneDNN without BF16
instructions even on a CPU that has them: BF16 convolutions would then be emulated (AVX-512) or refused
(AVX2), so such a cap counts as no native BF16.
"""
import os
from pathlib import Path

from src.errors import UserError

PRECISIONS = ("fp32", "bf16", "auto")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# INT8 dot products oneDNN's INT8 convolutions use (VNNI on AVX-512 since Cascade Lake, AVX-VNNI on client
# cores, AMX-INT8 since Sapphire Rapids); without them oneDNN runs INT8 on slower multiply-add sequences
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
CPUINFO = Path("/proc/cpuinfo")
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN reads the first one set
# oneDNN's ISA names below AVX512_CORE_BF16 (any other value keeps BF16: the higher levels, ALL, DEFAULT, or a
# name oneDNN ignores)
CAPS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


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


def int8_support(cpuinfo_text=None):
    """(fast, description): whether the CPU has INT8 dot products (INT8_FLAGS), and which it has or lacks."""
    found = [f for f in INT8_FLAGS if f in cpu_flags(cpuinfo_text)]
    if found:
        return True, f"INT8 dot products ({', '.join(found)})"
    return False, f"no INT8 dot products (none of {', '.join(INT8_FLAGS)} in {CPUINFO}'s flags)"


def onednn_env_cap(environ=None):
    """``NAME=VALUE`` of the ISA cap oneDNN takes from the environment (``environ``, default os.environ), or None."""
    environ = os.environ if environ is None else environ
    for name in ISA_ENV:
        value = environ.get(name, "").strip()
        if value:
            return f"{name}={value.upper()}"
    return None


def env_cap_without_bf16(environ=None):
    """The environment's oneDNN ISA cap (``NAME=VALUE``) when it leaves oneDNN no BF16 instructions, else None."""
    cap = onednn_env_cap(environ)
    return cap if cap and cap.split("=", 1)[1] in CAPS_WITHOUT_BF16 else None


def bf16_missing(device_target="CPU", conv_impl="fast", isa_capped=False, cpuinfo_text=None, environ=None):
    """(missing, description): why our BF16 convolutions cannot run here (None when they can), and the CPU's
    BF16 capability (bf16_support). They need the CPU, our oneDNN op (conv_impl fast), oneDNN not capped at
    AVX2, no environment cap below AVX512_CORE_BF16 (``environ``, default os.environ) and native BF16. Shared
    by BF16 inference (infer_precision) and BF16 training (amp_level on CPU)."""
    native, description = bf16_support(cpuinfo_text)
    if device_target != "CPU":
        return f"device_target={device_target}: our BF16 convolutions run on the CPU only", description
    if conv_impl != "fast":
        return "our oneDNN op is not running (conv_impl native, or the op not built: 'make ops')", description
    if isa_capped:
        return "oneDNN is capped at AVX2 (cpu_isa_cap=on), which has no BF16 instructions", description
    env_cap = env_cap_without_bf16(environ)
    if env_cap:
        return f"oneDNN is capped by {env_cap}, below AVX512_CORE_BF16: no BF16 instructions", description
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
