"""src/quant and src/models/quantized.py: per-channel weights, the INT8 unit (emulation against the numpy reference
of the scheme, against C1's oneDNN op, and against the float unit), the whole tiny network's logits against FP32 for
every family, the INT8 file's round trip and its validation.

Tolerances (stated in docs/int8.md):
- emulation vs the numpy reference and vs the oneDNN op: at most 1 output LSB (float32 rounding of the scale
  products may move a value across a rounding boundary), most elements exact;
- one unit, INT8 vs FP32 on the same (dequantized) input: |y_int8 - clip(y_fp32)| <= out_scale / 2 (the output's
  rounding) + sum over the window of |x| * w_scale[c] / 2 (the weights' rounding);
- the whole tiny network (random weights, width 0.125, calibrated on 6 random clips, evaluated on 6 others): the
  same top-1 on every clip, and max |logit diff| <= 25 % of the largest |logit| (measured: resnet 20 %, the others
  5-8 %; random 8-channel layers do not average rounding errors out; a trained model's figures are in
  docs/int8.md).
"""
import numpy as np
import pytest

import mindspore as ms

from src.errors import UserError
from src.models.quantized import EmulatedUnit, Int8ResNet3D
from src.quant.calibrate import calibrate
from src.quant.model import load_quantized, quantize_weights, quantized_network, save_quantized
from src.quant.wiring import walk
from src.record import ModelRecord, RecordError
from tests.helpers import int8_reference as ref

FAMILIES = {"resnet": {}, "preresnet": {"resnet_shortcut": "A"}, "resnet2p1d": {},
            "resnext": {"model_depth": 50, "widen_factor": 0.5}, "tv_r2plus1d": {}}


def tiny_quantized(tmp_path, model="resnet", **overrides):
    """(QuantNetwork, walked float network, held-out clips) of a random tiny checkpoint of ``model``, calibrated on
    6 random clips."""
    from src.config import load_config
    from src.inference.predictors import checkpoint_network
    from src.weights.model_file import record_of
    from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

    options = {"model": model, **overrides}
    ckpt = make_tiny_checkpoint(tmp_path / f"{model}.ckpt", **options)
    cfg = load_config(tiny_options(**options))
    walked = walk(checkpoint_network(cfg.arch, ckpt))
    rng = np.random.default_rng(3)
    clips = [rng.normal(0, 1, (3, 3, 4, 32, 32)).astype(np.float32) for _ in range(4)]
    activations, _, _ = calibrate(walked, clips[:2])
    record = ModelRecord.create(dict(record_of(cfg).config), precision="int8", int8={
        "method": "test", "videos": 1, "clips": 6, "activations": {k: list(v) for k, v in activations.items()}})
    return quantized_network(*walked, activations, record), walked, clips[2:], cfg


def test_weights_per_output_channel():
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 1, (4, 3, 3, 3, 3)).astype(np.float32) * np.array([1, 0.01, 100, 0])[:, None, None, None,
                                                                                                 None]
    q, scale = quantize_weights(weight)
    assert q.dtype == np.int8 and q.min() >= -127 and q.max() <= 127
    assert scale[3] == 1.0 and not q[3].any()  # a zero channel
    for c in range(3):
        assert np.abs(q[c]).max() == 127
        assert np.abs(q[c] * scale[c] - weight[c]).max() <= scale[c] / 2 * (1 + 1e-6)


def _unit_inputs(unit, rng, size=(2, 5, 9, 9)):
    n, d, h, w = size
    in_c = unit.weight_q.shape[1] * unit.groups
    if unit.in_dtype == "f32":
        x = rng.normal(0, 1, (n, in_c, d, h, w)).astype(np.float32)
    else:
        low, high, np_type = ref.RANGES[unit.in_dtype]
        x = ref.ndhwc(rng.integers(low, high + 1, (n, in_c, d, h, w)).astype(np_type))
    out_shape = ref.int_conv(np.zeros(x.shape if unit.in_dtype != "f32" else ref.ndhwc(x).shape, np.int8),
                             unit.weight_q, unit.stride, unit.padding, unit.groups).shape
    residual = None
    if unit.residual is not None:
        low, high, np_type = ref.RANGES[unit.residual[0]]
        residual = rng.integers(low, high + 1, out_shape).astype(np_type)
    return x, residual


def _emulated(unit, x, residual):
    cell = EmulatedUnit(unit)
    xin = x if unit.in_dtype == "f32" else np.moveaxis(x, -1, 1).astype(np.float32)
    args = [ms.Tensor(np.ascontiguousarray(xin))]
    if residual is not None:
        args.append(ms.Tensor(np.ascontiguousarray(np.moveaxis(residual, -1, 1)).astype(np.float32)))
    return np.moveaxis(cell(*args).asnumpy(), 1, -1)


@pytest.mark.parametrize("model", ["resnet", "preresnet", "resnext"])
def test_emulated_unit_matches_reference_and_op(tmp_path, model):
    """Every unit of a tiny network: the emulation vs the numpy reference, and vs C1's oneDNN op where built."""
    from src.ops.int8_conv3d import Int8Conv3d, status

    network, *_ = tiny_quantized(tmp_path, model, **FAMILIES[model])
    rng = np.random.default_rng(1)
    for unit in network.ordered_units():
        if model == "resnext" and not unit.name.startswith(("stem", "layer1.0", "layer4.0")):
            continue  # ResNeXt-50: the first and last stages' units (grouped, cardinality 32) keep the test short
        x, residual = _unit_inputs(unit, rng)
        expected = ref.run_unit(unit, x, residual).astype(np.float32)
        got = _emulated(unit, x, residual)
        lsb = 1e-3 * np.abs(expected).max() if unit.out_dtype == "f32" else 1.0
        assert np.abs(got - expected).max() <= lsb, unit.name
        assert np.mean(got == expected) > 0.99 or unit.out_dtype == "f32", unit.name
        if not status()[0]:
            continue
        op = Int8Conv3d(unit.weight_q, unit.weight_scale, unit.bias, unit.stride, unit.padding, unit.groups,
                        unit.in_dtype, unit.in_scale, unit.out_dtype, unit.out_scale, unit.relu, unit.residual)
        if op.probe(x.shape)[1] is not None:  # e.g. oneDNN capped below VNNI in this process by an earlier test
            continue
        args = [ms.Tensor(x)] + ([] if residual is None else [ms.Tensor(residual)])
        from_op = op(*args).asnumpy().astype(np.float32)
        assert np.abs(from_op - got).max() <= lsb, unit.name


def test_unit_int8_vs_fp32_within_rounding_bounds(tmp_path):
    """One unit: INT8 (dequantized) vs the float unit on the same dequantized input, within the rounding bounds."""
    network, walked, _, _ = tiny_quantized(tmp_path)
    rng = np.random.default_rng(2)
    for unit in network.ordered_units():
        if unit.in_dtype == "f32" or unit.residual is not None:
            continue
        x, _ = _unit_inputs(unit, rng)
        x_float = ref.dequantize(x, unit.in_scale)
        weight = walked[0][unit.name].weight
        y = _float_conv(x_float, weight, unit) + unit.bias
        y = np.maximum(y, 0) if unit.relu else y
        low, high, _ = ref.RANGES[unit.out_dtype]
        y = np.clip(y, low * unit.out_scale, high * unit.out_scale)
        got = ref.dequantize(_emulated(unit, x, None), unit.out_scale)
        window = _float_conv(np.abs(x_float), np.ones_like(weight), unit)  # sum of |x| over each window
        bound = unit.out_scale / 2 + window * unit.weight_scale / 2
        assert (np.abs(got - y) <= bound * (1 + 1e-4) + 1e-6).all(), unit.name


def _float_conv(x_ndhwc, weight, unit):
    """float64 convolution of NDHWC ``x_ndhwc`` with float ``weight`` through the reference's integer loop (x scaled
    to integers exactly: it is a multiple of in_scale)."""
    q = np.rint(x_ndhwc / unit.in_scale).astype(np.int64)
    w = np.asarray(weight, np.float64)
    out = np.zeros(ref.int_conv(np.zeros_like(q), np.zeros(w.shape, np.int8), unit.stride, unit.padding,
                                unit.groups).shape, np.float64)
    scale = 2.0 ** 20  # weights as integers of 2^-20: exact enough for float32 results
    wq = np.rint(w * scale).astype(np.int64)
    out += ref.int_conv(q, wq, unit.stride, unit.padding, unit.groups) / scale
    return (out * unit.in_scale).astype(np.float32)


@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_whole_network_logits(tmp_path, model):
    """Every family: INT8 logits (emulation, and the oneDNN op where built) against the FP32 folded network on
    held-out clips."""
    from src.models.quantized import int8_network
    from src.quant.calibrate import FloatRunner

    network, walked, clips, _ = tiny_quantized(tmp_path, model, **FAMILIES[model])
    fp32 = np.concatenate([FloatRunner(*walked)(c, lambda *_: None) for c in clips])
    nets = [int8_network(network, "auto")]
    if model != "resnext":  # ResNeXt's emulation (32 native grouped convolutions per unit) is slow: its units are
        nets.append(Int8ResNet3D(network))  # checked against the op in test_emulated_unit_matches_reference_and_op
    for net in nets:
        int8 = np.concatenate([net(ms.Tensor(c)).asnumpy() for c in clips])
        assert (int8.argmax(1) == fp32.argmax(1)).all(), model
        assert np.abs(int8 - fp32).max() <= 0.25 * np.abs(fp32).max(), model


def test_file_round_trip_and_tampering(tmp_path):
    import json

    network, *_ = tiny_quantized(tmp_path)
    path = save_quantized(network, tmp_path / "int8.ckpt", "resnet")
    loaded = load_quantized(path)
    assert list(loaded.units) == list(network.units)
    for name, unit in network.units.items():
        assert np.array_equal(loaded.units[name].weight_q, unit.weight_q)
        assert loaded.units[name].in_scale == unit.in_scale and loaded.units[name].residual == unit.residual
    data = json.loads(network.record.to_json())
    for bad, words in (([["u8", -1.0]], "scale -1.0 is not a finite number above 0"),
                       ([["u8", "0.1"]], "is not a finite number"), ([["q8", 0.1]], "is not [dtype, scale]")):
        data["int8"]["activations"]["stem.0"] = bad[0]
        with pytest.raises(RecordError, match="int8 activation stem.0") as err:
            ModelRecord.from_json(json.dumps(data), "m.ckpt")
        assert words in str(err.value) and "\n" not in str(err.value)
    data["int8"]["activations"]["stem.0"] = ["s8", 0.1]  # valid alone, but the wiring makes it u8
    record = ModelRecord.from_json(json.dumps(data), path)
    with pytest.raises(UserError, match="stem.0 is s8 but the network makes it u8"):
        load_quantized(path, record)
    del data["int8"]
    with pytest.raises(RecordError, match="section is missing for precision int8"):
        ModelRecord.from_json(json.dumps(data), "m.ckpt")


def test_slow_int8_is_said_once_on_a_cpu_without_int8_dot_products(tmp_path, monkeypatch, caplog):
    import logging

    import src.models.quantized as quantized
    import src.ops.isa as isa

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    monkeypatch.setattr(isa, "CPUINFO", cpuinfo)
    monkeypatch.setattr(quantized, "_said", set())
    network, *_ = tiny_quantized(tmp_path)
    with caplog.at_level(logging.INFO, logger="resnet3d"):
        quantized.int8_network(network, "native")
        quantized.int8_network(network, "native")
    slow = [r.getMessage() for r in caplog.records if "INT8 is slow on this CPU" in r.getMessage()]
    assert len(slow) == 1 and "avx512_vnni" in slow[0]
    assert any("native emulation (conv_impl=native)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("refuse", ["all", "grouped"])
def test_units_the_int8_op_refuses_run_emulated(tmp_path, monkeypatch, caplog, refuse):
    """A geometry oneDNN refuses (every one on a CPU without INT8 dot products; here forced for tests) runs that
    unit in the emulation (its float convolution through the FP32 fused op), said once; the logits stay the
    emulation's."""
    import logging

    import src.models.quantized as quantized
    from src.ops.int8_conv3d import REFUSE_ENV, status

    if not status()[0]:
        pytest.skip(f"the INT8 op is not built: {status()[1]}")
    monkeypatch.setenv(REFUSE_ENV, refuse)
    monkeypatch.setattr(quantized, "_said", set())
    model = "resnext" if refuse == "grouped" else "resnet"
    network, *_ = tiny_quantized(tmp_path, model, **FAMILIES[model])
    # the library keeps each geometry's plan; those made under another RESNET3D_INT8_REFUSE setting are not reused
    clip = np.random.default_rng(5).normal(0, 1, (1, 3, 6, 40, 40)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="resnet3d"):
        net = quantized.int8_network(network, "auto")
        got = net(ms.Tensor(clip)).asnumpy()
    refused = [r.getMessage() for r in caplog.records if "runs in the native emulation" in r.getMessage()]
    if any("without INT8 dot products" in line for line in refused):
        pytest.skip("oneDNN runs below VNNI in this process (an earlier test capped its ISA): every unit is refused")
    assert refused and all(REFUSE_ENV in line for line in refused)
    fallbacks = [c for c in net.cells_and_names() if isinstance(c[1], quantized.ChannelsLastFallback)]
    groups = [u for u in network.ordered_units() if u.groups > 1]
    assert len(fallbacks) == (len(network.units) if refuse == "all" else len(groups))
    expected = Int8ResNet3D(network)(ms.Tensor(clip)).asnumpy()
    # all refused: the emulation's logits; mixed (ResNeXt-50's grouped units emulated, the others oneDNN's): the
    # op's 1-LSB differences carried through 16 blocks (measured 0.6 % of the largest logit)
    tolerance = 1e-3 if refuse == "all" else 2e-2
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()
