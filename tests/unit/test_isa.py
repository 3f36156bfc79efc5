"""src/ops/isa.py: native BF16 from the CPU's flags, and what infer_precision resolves to (or why it is refused),
for CPUs other than this one (their /proc/cpuinfo text is passed in)."""
import pytest

from src.errors import UserError
from src.ops.isa import bf16_support, cpu_flags, resolve_infer_precision

ZEN4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"


def test_flags_of_the_first_processor():
    assert {"avx512_bf16", "avx2"} <= cpu_flags(ZEN4)
    assert cpu_flags("no flags here") == set()


@pytest.mark.parametrize("text, native", [(ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE, False)])
def test_native_bf16_is_avx512_bf16_or_amx_bf16(text, native):
    assert bf16_support(text)[0] is native


def test_fp32_is_always_fp32():
    assert resolve_infer_precision("fp32", cpuinfo_text=SKYLAKE)[0] == "fp32"
    assert resolve_infer_precision("fp32", "GPU", "native", True, SKYLAKE)[0] == "fp32"


def test_bf16_and_auto_where_native():
    assert resolve_infer_precision("bf16", cpuinfo_text=ZEN4) == ("bf16", "native BF16 (avx512_bf16)")
    assert resolve_infer_precision("auto", cpuinfo_text=SAPPHIRE_RAPIDS)[0] == "bf16"


def test_bf16_refused_without_the_isa_naming_it():
    with pytest.raises(UserError) as err:
        resolve_infer_precision("bf16", cpuinfo_text=SKYLAKE)
    message = str(err.value)
    assert "\n" not in message
    assert "avx512_bf16" in message and "amx_bf16" in message and "--infer_precision=fp32" in message


@pytest.mark.parametrize("where, missing", [
    (dict(device_target="GPU"), "CPU only"),
    (dict(conv_impl="native"), "oneDNN op is not running"),
    (dict(isa_capped=True), "capped at AVX2"),
])
def test_bf16_refused_off_the_fused_cpu_path_auto_falls_back(where, missing):
    with pytest.raises(UserError, match=missing):
        resolve_infer_precision("bf16", cpuinfo_text=ZEN4, **where)
    precision, reason = resolve_infer_precision("auto", cpuinfo_text=ZEN4, **where)
    assert precision == "fp32" and missing in reason
    assert resolve_infer_precision("auto", cpuinfo_text=SKYLAKE) == (
        "fp32", "auto: this CPU has no native BF16 (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo's flags)")


def test_unknown_precision():
    with pytest.raises(UserError, match="one of fp32, bf16, auto"):
        resolve_infer_precision("fp16")
