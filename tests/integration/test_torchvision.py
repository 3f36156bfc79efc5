"""torchvision's video ResNets (r3d_18, mc3_18, r2plus1d_18) convert exactly: a plain state dict saved from
torchvision's own model code (tests/helpers/torchvision_reference.py: the pinned wheel's
torchvision/models/video/resnet.py, unmodified) converts with its family inferred and torchvision's clip recorded,
and reproduces torchvision's logits through the checkpoint network, the inference network and the ONNX export."""
import dataclasses

import numpy as np
import pytest
import torch

import mindspore as ms
import pth_to_ckpt
from src.config import load_config
from src.deploy.export import export_network, input_shape
from src.errors import UserError
from src.models.factory import build_model
from src.models.families import generate_family
from src.models.inference import inference_network
from src.ops.fused_conv3d import status
from src.train.step import freeze_before
from src.weights.checkpoint import load_pretrained, load_strict
from src.weights.model_file import read_record
from src.weights.pth_convert import TORCHVISION_MEAN, TORCHVISION_STD, convert_pth
from tests.helpers.nets import copy_parameters, relative_error
from tests.helpers.torchvision_reference import randomize_torchvision, video_resnet_module

ARCHS = {"r3d_18": "tv_r3d", "mc3_18": "tv_mc3", "r2plus1d_18": "tv_r2plus1d"}
RTOL = 1e-4
CLIP = (2, 3, 8, 32, 32)  # through the fast convolutions
SMALL = (1, 3, 4, 16, 16)  # through MindSpore's own Conv3D (its reference kernel on an uncapped CPU: slow)
FUSED, _ = status()


@pytest.fixture(scope="module")
def torchvision_models():
    """torchvision's own module (downloaded and unpacked once per machine; skipped without a package index)."""
    return video_resnet_module()


@pytest.fixture(scope="module")
def converted(torchvision_models, tmp_path_factory):
    """arch -> (torchvision's model with seeded random weights, the converted checkpoint), converted once."""
    done = {}

    def convert(arch):
        if arch not in done:
            model = randomize_torchvision(getattr(torchvision_models, arch)(), seed=len(done))
            folder = tmp_path_factory.mktemp(arch)
            torch.save(model.state_dict(), folder / f"{arch}.pth")  # as torchvision releases them: a plain dict
            convert_pth(folder / f"{arch}.pth", folder / f"{arch}.ckpt")
            done[arch] = model, folder / f"{arch}.ckpt"
        return done[arch]

    return convert


def _reference(model, shape, seed=1):
    x = np.random.RandomState(seed).randn(*shape).astype(np.float32)
    with torch.no_grad():
        return x, model(torch.from_numpy(x)).numpy()


def _network(ckpt, conv_impl="native", **changes):
    net = build_model(dataclasses.replace(read_record(ckpt).spec(), **changes), conv_impl=conv_impl)
    load_strict(net, ckpt)
    net.set_train(False)
    return net


def test_a_torchvision_state_dict_converts_with_its_family_and_clip(torchvision_models, tmp_path, capsys):
    pth, ckpt = tmp_path / "mc3_18-a90a0ba3.pth", tmp_path / "mc3_18.ckpt"
    torch.save(randomize_torchvision(torchvision_models.mc3_18()).state_dict(), pth)
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    out = capsys.readouterr().out
    assert "architecture: tv_mc3 depth 18 (basic, blocks [2, 2, 2, 2]), shortcut B, 400 classes" in out
    assert "torchvision's mc3_18 (Kinetics-400; its class names are not recorded)" in out
    assert "use it with --model=tv_mc3 --model_depth=18 --resnet_shortcut=B" in out
    assert "converted 102 tensors" in out
    record = read_record(ckpt)
    assert record.spec().model == "tv_mc3" and record.config["n_classes"] == 400
    assert record.config["sample_size"] == 112 and record.config["sample_duration"] == 16
    assert record.config["mean"] == list(TORCHVISION_MEAN) and record.config["std"] == list(TORCHVISION_STD)
    assert record.config["resize"] == [128, 171] and record.class_names is None


def _parity(arch, results):
    for name, (got, want) in results.items():
        rel = relative_error(got, want)
        print(f"parity {arch} {name}: max rel diff {rel:.2e}")
        assert rel <= RTOL, name


@pytest.mark.skipif(not FUSED, reason="the fast op library is not built")
@pytest.mark.parametrize("arch", list(ARCHS))
def test_converted_torchvision_network_reproduces_its_logits(converted, arch):
    """The checkpoint network (fast convolutions, as training builds it) and the fused inference network against
    torchvision's model on the same clip."""
    model, ckpt = converted(arch)
    x, ref = _reference(model, CLIP)
    net = _network(ckpt, "fast")
    assert net.architecture == ARCHS[arch]
    folded = inference_network(net, "fast", "fp32")
    assert folded.unit_counts["native"] == 0 and folded.unit_counts["fused"] > 0
    _parity(arch, {"checkpoint fast": (net(ms.Tensor(x)).asnumpy(), ref),
                   "inference fast": (folded(ms.Tensor(x)).asnumpy(), ref)})


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_native_networks_reproduce_torchvision_logits(converted, arch):
    """MindSpore's own convolutions (the exported network; the inference network without the fused op)."""
    model, ckpt = converted(arch)
    x, ref = _reference(model, SMALL)
    net = _network(ckpt)
    _parity(arch, {"checkpoint native": (net(ms.Tensor(x)).asnumpy(), ref),
                   "inference native": (inference_network(net, "native", "fp32")(ms.Tensor(x)).asnumpy(), ref)})


def _onnx_parity(converted, arch, tmp_path):
    import onnxruntime as ort

    model, ckpt = converted(arch)
    x, ref = _reference(model, SMALL)
    cfg = load_config(["--file_format=ONNX", "--device_target=CPU", "--n_classes=400", "--export_batch_size=1",
                       f"--sample_size={SMALL[3]}", f"--sample_duration={SMALL[2]}"])
    diff = export_network(_network(ckpt), cfg.file_format,
                          input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / f"{arch}.onnx")
    assert diff <= 1e-5
    session = ort.InferenceSession(str(tmp_path / f"{arch}.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float64)
    # the graph ends in softmax: its log is the logits less a constant per clip; compare both centred
    got = np.log(probabilities)
    want = ref.astype(np.float64)
    rel = relative_error(got - got.mean(axis=1, keepdims=True), want - want.mean(axis=1, keepdims=True))
    print(f"parity {arch} ONNX: max rel diff of logits (centred) {rel:.2e}, probabilities vs the checkpoint "
          f"network {diff:.2e}")
    assert rel <= RTOL


def test_r2plus1d_onnx_export_reproduces_torchvision(converted, tmp_path):
    _onnx_parity(converted, "r2plus1d_18", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18"])
def test_onnx_export_reproduces_torchvision(converted, tmp_path, arch):
    _onnx_parity(converted, arch, tmp_path)


def test_fine_tuning_a_converted_torchvision_network(converted):
    model, ckpt = converted("mc3_18")
    net = build_model(dataclasses.replace(read_record(ckpt).spec(), n_classes=5))
    message = load_pretrained(net, ckpt, n_pretrain_classes=400)
    assert "fc replaced: pretrained head has 400 classes, model has 5" in message
    np.testing.assert_array_equal(net.parameters_dict()["stem.0.weight"].asnumpy(),
                                  model.state_dict()["stem.0.weight"].numpy())
    assert {p.name.split(".")[0] for p in freeze_before(net, "conv1")} == {"stem", "layer1", "layer2", "layer3",
                                                                          "layer4", "fc"}
    assert {p.name.split(".")[0] for p in freeze_before(net, "layer4")} == {"layer4", "fc"}


def test_other_mixed_convolutions_are_refused_in_one_line(torchvision_models, tmp_path, capsys):
    """torchvision's VideoResNet takes any conv maker per stage; only its r3d, mc3 and r2plus1d mixes convert."""
    tv = torchvision_models
    reversed_mc3 = tv.VideoResNet(tv.BasicBlock, [tv.Conv3DNoTemporal] + [tv.Conv3DSimple] * 3, [1, 1, 1, 1],
                                  tv.BasicStem, num_classes=3)
    torch.save(reversed_mc3.state_dict(), tmp_path / "rmc3.pth")
    assert pth_to_ckpt.main([f"--pth_path={tmp_path / 'rmc3.pth'}", f"--ckpt_path={tmp_path / 'x.ckpt'}"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "layer1 1x3x3, layer2 3x3x3" in err[0] and "none of r3d" in err[0], err
    assert not (tmp_path / "x.ckpt").exists()


@pytest.mark.parametrize("option, message", [({"resnet_shortcut": "A"}, "shortcuts .resnet_shortcut B. only, not A"),
                                             ({"conv1_t_stride": 2}, "temporal stride 1")])
def test_torchvision_families_refuse_options_they_do_not_have(option, message):
    with pytest.raises(UserError, match=message):
        generate_family("tv_r3d", 18, **option)


def test_a_tiny_torchvision_family_runs_fast_and_native_alike():
    """Widened down (x0.25, the stem's 45 middle channels too: torchvision has no such option), depth 10: the
    fast and native networks agree."""
    ms.set_seed(3)
    native = generate_family("tv_r2plus1d", 10, widen_factor=0.25, n_classes=4)
    native.set_train(False)
    x = ms.Tensor(np.random.RandomState(4).randn(*SMALL).astype(np.float32))
    logits = native(x).asnumpy()
    assert logits.shape == (1, 4)
    if FUSED:
        fast = generate_family("tv_r2plus1d", 10, widen_factor=0.25, n_classes=4, conv_impl="fast")
        copy_parameters(native, fast)
        fast.set_train(False)
        assert relative_error(fast(x).asnumpy(), logits) <= RTOL


@pytest.mark.slow
@pytest.mark.parametrize("stem, conv", [("R2Plus1dStem", "Conv2Plus1D"), ("BasicStem", "Conv3DSimple")])
def test_bottleneck_video_resnets_convert_exactly(torchvision_models, tmp_path, stem, conv):
    """torchvision's Bottleneck (no released weights, but VideoResNet builds it) at depth 50."""
    tv = torchvision_models
    model = randomize_torchvision(tv.VideoResNet(tv.Bottleneck, [getattr(tv, conv)] * 4, [3, 4, 6, 3],
                                                 getattr(tv, stem), num_classes=10), seed=5)
    torch.save(model.state_dict(), tmp_path / "m.pth")
    arch, _, _ = convert_pth(tmp_path / "m.pth", tmp_path / "m.ckpt")
    assert arch.block == "bottleneck" and arch.model_depth == 50
    impl, shape = ("fast", CLIP) if FUSED else ("native", SMALL)
    x, ref = _reference(model, shape)
    net = _network(tmp_path / "m.ckpt", impl)
    for name, got in (("checkpoint", net(ms.Tensor(x)).asnumpy()),
                      ("inference", inference_network(net, impl, "fp32")(ms.Tensor(x)).asnumpy())):
        rel = relative_error(got, ref)
        print(f"parity bottleneck {stem} {name} {impl}: max rel diff {rel:.2e}")
        assert rel <= RTOL
