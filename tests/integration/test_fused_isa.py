"""The fused inference op on each oneDNN ISA, and its fallbacks when oneDNN refuses a primitive.

Which implementations oneDNN offers depends on the ISA it runs on, so a geometry one CPU accepts may be refused
on another (a deployer's Ice Lake crashed on ResNeXt: "could not create a primitive descriptor"). oneDNN takes a
cap from ONEDNN_MAX_CPU_ISA, read at its first use: each ISA runs in a fresh subprocess (this file run as a
script), capped at AVX512_CORE, AVX512_CORE_VNNI (an Ice Lake's ISA) or AVX2, skipped where this CPU lacks it.
There every family's real-width network (ResNet-18/50, R(2+1)D-18, pre-activation ResNet-18, WideResNet-50,
ResNeXt-101 with cardinality 32; tiny clips) runs through the fused inference network and its logits are
compared with the native eval-mode network's (FP32, FOLD_TOLERANCE as tests/unit/test_inference_network.py),
and every unit's primitive is also made at the deployed clip size (1x3x16x112x112), where oneDNN would refuse.
Under AVX2 a BF16 convolution, which oneDNN refuses there, checks the op's own fallback (float32, one line).

The fallback tests inject refusals with the op's test-only switch RESNET3D_FUSED_REFUSE (post_ops | all, with
an optional ":grouped"; src/ops/csrc/conv3d_infer.cc), read by the library whenever it makes a plan.
"""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # the child process: this file run as a script
    sys.path.insert(0, str(ROOT))

FOLD_TOLERANCE = 1e-5
CLIP = (1, 3, 4, 32, 32)  # compared with the native network
FULL_CLIP = (1, 3, 16, 112, 112)  # every unit's primitive made (not run) at the deployed size too
# ISA cap -> (dnnl_cpu_isa_t oneDNN must report, /proc/cpuinfo flags the CPU needs)
AVX512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
ISAS = {
    "AVX512_CORE": (0x27, AVX512),
    "AVX512_CORE_VNNI": (0x67, AVX512 | {"avx512_vnni"}),
    "AVX2": (0x7, {"avx2", "fma"}),
}
# every family at its real widths (src/models/families.py)
FAMILIES = {
    "resnet18": dict(model="resnet", model_depth=18),
    "resnet50": dict(model="resnet", model_depth=50),
    "r2plus1d18": dict(model="resnet2p1d", model_depth=18),
    "preresnet18": dict(model="preresnet", model_depth=18),
    "wideresnet50": dict(model="wideresnet", model_depth=50),
    "resnext101": dict(model="resnext", model_depth=101),
}


# ---------------------------------------------------------------------------------------------------- child


def _randomize_batch_norm(net, seed):
    import mindspore as ms

    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(("moving_mean", "beta")):
            p.set_data(ms.Tensor(rng.normal(0, 0.2, p.shape).astype(np.float32)))
        elif p.name.endswith(("moving_variance", "gamma")):
            p.set_data(ms.Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))


def _family_error(name, x):
    """{error, fused, fallbacks} of family ``name``'s fused inference network against its native network."""
    import mindspore as ms

    from src.models.families import generate_family
    from src.models.inference import NativeFallback, inference_network

    ms.set_seed(0)
    net = generate_family(n_classes=11, conv_impl="native", **FAMILIES[name])
    _randomize_batch_norm(net, 0)
    net.set_train(False)
    want = net(x).asnumpy()
    folded = inference_network(net, "fast", "fp32")
    got = folded(x).asnumpy()
    folded.probe(FULL_CLIP)
    fallbacks = sum(isinstance(c, NativeFallback) for _, c in folded.cells_and_names())
    error = float(np.abs(got - want).max() / np.abs(want).max())
    return {"error": error, "fused": folded.unit_counts, "fallbacks": fallbacks}


def _bf16_conv():
    """A BF16 fused convolution with residual add and ReLU against its FP32 twin (relative error)."""
    import mindspore as ms

    from src.ops.fused_conv3d import FusedConv3d

    rng = np.random.default_rng(0)
    w = rng.standard_normal((24, 8, 3, 3, 3)).astype(np.float32) * 0.2
    b = rng.standard_normal(24).astype(np.float32)
    x = ms.Tensor(rng.standard_normal((1, 8, 4, 9, 9)).astype(np.float32))
    r = ms.Tensor(rng.standard_normal((1, 24, 4, 9, 9)).astype(np.float32))
    want = FusedConv3d(w, b, 1, 1, relu=True, residual=True)(x, r).asnumpy()
    got = FusedConv3d(w, b, 1, 1, relu=True, residual=True, dtype=ms.bfloat16)(x, r.astype(ms.bfloat16))
    return float(np.abs(got.astype(ms.float32).asnumpy() - want).max() / np.abs(want).max())


def child(isa):
    """Runs every family (and under AVX2 the BF16 convolution) here; prints one JSON line."""
    import ctypes

    import mindspore as ms

    from src.runtime import _dnnl_library, setup_context

    setup_context("CPU", "PYNATIVE", conv_impl="fast", cpu_isa_cap="off")
    x = ms.Tensor(np.random.default_rng(1).standard_normal(CLIP).astype(np.float32))
    result = {name: _family_error(name, x) for name in FAMILIES}
    if isa == "AVX2":
        result["bf16_conv_error"] = _bf16_conv()
    result["effective_isa"] = ctypes.CDLL(str(_dnnl_library())).dnnl_get_effective_cpu_isa()
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------------- tests


def _cpu_flags():
    from src.ops.isa import cpu_flags

    return cpu_flags()


def _op_status():
    try:
        from src.ops.fused_conv3d import status
    except ImportError as err:  # pragma: no cover - the module imports MindSpore only
        return False, str(err)
    return status()


OP_AVAILABLE, OP_REASON = _op_status()
needs_op = pytest.mark.skipif(not OP_AVAILABLE, reason=f"fused conv op unavailable: {OP_REASON}")


def run_capped(isa, timeout=900):
    """(result dict, stderr) of the child capped at ``isa``."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, GLOG_v="3")
    env.pop("DNNL_MAX_CPU_ISA", None)
    done = subprocess.run([sys.executable, __file__, isa], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)
    assert done.returncode == 0, f"{isa}: exit {done.returncode}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@needs_op
@pytest.mark.parametrize("isa", list(ISAS))
def test_every_family_on_each_isa(isa):
    expected, needs = ISAS[isa]
    lacking = needs - _cpu_flags()
    if lacking:
        pytest.skip(f"this CPU lacks {', '.join(sorted(lacking))}: cannot run oneDNN at {isa}")
    result, stderr = run_capped(isa)
    assert result.pop("effective_isa") == expected, f"oneDNN did not run at {isa}"
    refused = [line for line in stderr.splitlines() if line.startswith("conv3d_infer: oneDNN refused")]
    bf16_error = result.pop("bf16_conv_error", None)
    for name, r in result.items():
        print(f"{isa} {name}: logits relative error {r['error']:.2e}, units {r['fused']}")
        assert r["fallbacks"] == 0, f"{isa} {name}: a float32 layer ran natively\n{stderr[-3000:]}"
        assert r["fused"]["native"] == r["fused"]["native_grouped"] == 0
        assert r["error"] <= FOLD_TOLERANCE, f"{isa} {name}: {r['error']:.2e}"
    assert result["resnext101"]["fused"]["fused_grouped"] == 33  # one grouped convolution per block
    if bf16_error is not None:  # AVX2: no BF16 kernel; the op runs that convolution in float32, said once
        bf16_lines = [line for line in refused if "bfloat16" in line]
        assert len(bf16_lines) == 1 and "in float32 (bfloat16 converted in and out)" in bf16_lines[0], stderr
        assert bf16_error < 1e-2
        refused = [line for line in refused if line not in bf16_lines]
    if refused:  # FP32 forms oneDNN refused on this ISA ran without post-ops (correct, a little slower)
        warnings.warn(f"{isa}: {len(refused)} fused forms refused, e.g. {refused[0]}", stacklevel=1)


def _reference(x, w, b, stride, padding, groups, residual, relu):
    import torch

    out = torch.nn.functional.conv3d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     torch.tensor(b, dtype=torch.float64), stride=stride, padding=padding,
                                     groups=groups)
    if residual is not None:
        out = out + torch.tensor(residual, dtype=torch.float64)
    return (torch.relu(out) if relu else out).numpy()


@needs_op
@pytest.mark.parametrize("groups", [1, 4])
def test_refused_post_ops_run_after_the_convolution_said_once(groups, monkeypatch, capfd):
    """A fused form oneDNN refuses: the convolution runs alone, the residual add and ReLU after it; one line."""
    import mindspore as ms

    from src.ops.fused_conv3d import FusedConv3d

    monkeypatch.setenv("RESNET3D_FUSED_REFUSE", "post_ops")
    rng = np.random.default_rng(groups)
    w = rng.standard_normal((12, 20 // groups, 3, 3, 3)).astype(np.float32) * 0.2  # geometry of this test only
    b = rng.standard_normal(12).astype(np.float32)
    x = rng.standard_normal((1, 20, 3, 7, 5)).astype(np.float32)
    r = rng.standard_normal((1, 12, 2, 4, 3)).astype(np.float32)
    conv = FusedConv3d(w, b, 2, 1, relu=True, residual=True, groups=groups)
    capfd.readouterr()
    for _ in range(2):
        got = conv(ms.Tensor(x), ms.Tensor(r)).asnumpy()
        np.testing.assert_allclose(got, _reference(x, w, b, 2, 1, groups, r, True), rtol=1e-5, atol=1e-5)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == [line for line in lines if line.startswith("conv3d_infer: oneDNN refused conv 3x3x3 20->12")]
    assert len(lines) == 1, lines
    assert "running it without post-ops, the residual add and ReLU applied after the convolution" in lines[0]
    assert ("(4 groups)" in lines[0]) is (groups == 4)


@needs_op
@pytest.mark.parametrize("mode", ["PYNATIVE", "GRAPH"])
def test_a_layer_refused_in_every_form_runs_natively(mode, monkeypatch, caplog):
    """Every oneDNN form of the grouped convolutions refused: those layers run as native convolutions (one
    warning per geometry, once), the others stay fused, the logits are the native network's."""
    import logging

    import mindspore as ms

    from src.models.families import generate_family
    from src.models.inference import NativeFallback, inference_network

    monkeypatch.setenv("RESNET3D_FUSED_REFUSE", "all:grouped")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "GRAPH" else ms.PYNATIVE_MODE)
    ms.set_seed(3)
    net = generate_family("resnext", 50, widen_factor=0.375, n_classes=5, conv_impl="native")  # 48 ch, 32 groups
    _randomize_batch_norm(net, 3)
    net.set_train(False)
    size = 20 if mode == "GRAPH" else 24  # geometries of their own: each is said once per process
    x = ms.Tensor(np.random.default_rng(4).standard_normal((1, 3, 4, size, size)).astype(np.float32))
    want = net(x).asnumpy()
    folded = inference_network(net, "fast", "fp32")
    with caplog.at_level(logging.WARNING, logger="resnet3d"):
        got = [folded(x).asnumpy() for _ in range(2)]
    fallbacks = [c for _, c in folded.cells_and_names() if isinstance(c, NativeFallback)]
    assert len(fallbacks) == folded.unit_counts["fused_grouped"] == 16
    for g in got:
        assert float(np.abs(g - want).max() / np.abs(want).max()) <= FOLD_TOLERANCE
    said = [r.getMessage() for r in caplog.records if "refused every form" in r.getMessage()]
    assert said and len(said) == len(set(said)), said  # one line per geometry
    assert all("(32 groups)" in line and line.endswith("runs this layer instead") for line in said)


@needs_op
def test_bf16_fallback_keeps_layouts_and_type(monkeypatch):
    """A BF16 channels-last unit refused in every form: its native fallback reads and writes the unit's layouts
    and type."""
    import mindspore as ms

    from src.models.inference import NativeFallback
    from src.ops.fused_conv3d import FusedConv3d

    monkeypatch.setenv("RESNET3D_FUSED_REFUSE", "all")
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 5, 1, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((2, 5, 3, 6, 6)).astype(np.float32)
    r = rng.standard_normal((2, 6, 3, 6, 6)).astype(np.float32)
    unit = FusedConv3d(w, b, 1, (0, 1, 1), relu=True, residual=True, dtype=ms.bfloat16, channels_last=(True, True))
    shape, refusal = unit.probe([2, 3, 6, 6, 5], ms.bfloat16)
    assert shape == [2, 3, 6, 6, 6] and refusal.startswith("oneDNN refused every form of conv 1x3x3 5->6")
    unit.use_fallback(NativeFallback(unit))
    as_bf16 = ms.Tensor(np.moveaxis(x, 1, -1)).astype(ms.bfloat16)
    got = unit(as_bf16, ms.Tensor(np.moveaxis(r, 1, -1)).astype(ms.bfloat16))
    assert got.dtype == ms.bfloat16 and got.shape == (2, 3, 6, 6, 6)
    want = _reference(as_bf16.astype(ms.float32).asnumpy().transpose(0, 4, 1, 2, 3), w, b, 1, (0, 1, 1), 1, r, True)
    np.testing.assert_allclose(np.moveaxis(got.astype(ms.float32).asnumpy(), -1, 1), want, rtol=2e-2, atol=5e-2)


def test_environment_caps_below_bf16_mean_no_native_bf16():
    from src.ops.isa import bf16_missing, onednn_env_cap

    bf16_cpu = "flags\t: fpu avx2 avx512f avx512_bf16\n"
    assert bf16_missing(cpuinfo_text=bf16_cpu, environ={})[0] is None
    for value in ("AVX512_CORE_VNNI", "avx2", "AVX512_CORE"):
        missing, _ = bf16_missing(cpuinfo_text=bf16_cpu, environ={"DNNL_MAX_CPU_ISA": value})
        assert missing.startswith(f"oneDNN is capped by DNNL_MAX_CPU_ISA={value.upper()}, below AVX512_CORE_BF16")
    for value in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL"):
        assert bf16_missing(cpuinfo_text=bf16_cpu, environ={"ONEDNN_MAX_CPU_ISA": value})[0] is None
    # oneDNN reads ONEDNN_MAX_CPU_ISA first
    both = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16", "DNNL_MAX_CPU_ISA": "AVX2"}
    assert onednn_env_cap(both) == "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16"
    assert bf16_missing(cpuinfo_text=bf16_cpu, environ=both)[0] is None


if __name__ == "__main__":
    child(sys.argv[1])
