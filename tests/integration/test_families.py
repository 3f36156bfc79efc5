"""Every upstream family (R(2+1)D, and the CVPR 2018 resnet / preresnet / wideresnet / resnext files):
an upstream-style .pth converts with its family and options inferred, and reproduces our PyTorch
reference's logits through the checkpoint network, the inference network (native and fused), ONNX and
MINDIR; fine-tuning follows each family's module order; mismatched --model and DenseNet are refused."""
import numpy as np
import pytest
import torch

import mindspore as ms
import export
import pth_to_ckpt
from src.config import load_config
from src.deploy.export import export_network, input_shape
from src.models.inference import inference_network
from src.models.factory import ModelSpec, build_model
from src.ops.fused_conv3d import status
from src.train.step import freeze_before
from src.weights.checkpoint import load_pretrained, load_strict
from tests.helpers.torch_families import TorchFamily, save_upstream_way
from tests.helpers.torch_reference import TorchResNet3D, randomize

RTOL = 1e-4
CLIP = (2, 3, 8, 32, 32)
FUSED, _ = status()

# name: (family, depth, shortcut, options); widths x0.25 (ResNeXt cardinality 4) keep them tiny
CASES = {
    "r2p1d_basic_B": ("resnet2p1d", 18, "B", {}),
    "r2p1d_basic_A_stem": ("resnet2p1d", 10, "A", {"conv1_t_size": 3, "conv1_t_stride": 2}),
    "r2p1d_bottleneck_B": ("resnet2p1d", 50, "B", {"no_max_pool": True}),
    "cvpr2018_resnet_A": ("resnet", 18, "A", {}),
    "preresnet_basic_A": ("preresnet", 18, "A", {}),
    "preresnet_bottleneck_B": ("preresnet", 50, "B", {}),
    "wideresnet_B": ("wideresnet", 50, "B", {"wide_resnet_k": 2}),
    "resnext_B": ("resnext", 50, "B", {"resnext_cardinality": 4}),
}


def _torch_model(family, depth, shortcut, opts, seed):
    stem = {k: v for k, v in opts.items() if k in ("conv1_t_size", "conv1_t_stride", "no_max_pool")}
    if family == "resnet":
        model = TorchResNet3D(depth, n_classes=6, shortcut_type=shortcut, widen_factor=0.25)
    else:
        fixed_pool = {} if family == "resnet2p1d" else {"sample_size": CLIP[3], "sample_duration": CLIP[2]}
        model = TorchFamily(family, depth, n_classes=6, shortcut_type=shortcut, widen_factor=0.25,
                            wide_resnet_k=opts.get("wide_resnet_k", 2),
                            cardinality=opts.get("resnext_cardinality", 32), **stem, **fixed_pool)
    return randomize(model, seed=seed)


def _spec(family, depth, shortcut, opts, n_classes=6):
    return ModelSpec(model=family, model_depth=depth, resnet_shortcut=shortcut, widen_factor=0.25,
                     n_classes=n_classes, **opts)


def _convert(tmp_path, case, seed=0):
    family, depth, shortcut, opts = CASES[case]
    tmodel = _torch_model(family, depth, shortcut, opts, seed)
    pth, ckpt = tmp_path / f"{case}.pth", tmp_path / f"{case}.ckpt"
    save_upstream_way(tmodel, pth, arch=f"{family}-{depth}")
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    return tmodel, ckpt


def _rel(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def _log_softmax(x):
    x = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("case", list(CASES))
def test_converted_family_reproduces_upstream_logits(tmp_path, capsys, case):
    family, depth, shortcut, opts = CASES[case]
    tmodel, ckpt = _convert(tmp_path, case)
    out = capsys.readouterr().out
    assert f"architecture: {family}" in out and f"depth {depth} " in out and f"shortcut {shortcut}" in out
    assert "6 classes" in out and "widen_factor 0.25" in out
    assert ("CVPR 2018 networks end in AvgPool3d" in out) == (family != "resnet2p1d")
    for flag in ("wide_resnet_k", "resnext_cardinality"):
        if flag in opts:
            assert f"--{flag}={opts[flag]}" in out
    x = np.random.RandomState(1).randn(*CLIP).astype(np.float32)
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    net = build_model(_spec(family, depth, shortcut, opts))
    load_strict(net, ckpt)
    net.set_train(False)
    logits = net(ms.Tensor(x)).asnumpy()
    results = {"checkpoint": logits}
    for impl in ("native", "fast") if FUSED else ("native",):
        folded = inference_network(net, impl)
        results[f"inference_{impl}"] = folded(ms.Tensor(x)).asnumpy()
        if impl == "fast":  # every convolution fused, ResNeXt's grouped ones as grouped primitives
            assert folded.unit_counts["native"] == folded.unit_counts["native_grouped"] == 0
            assert (folded.unit_counts["fused_grouped"] > 0) == (family == "resnext")
    for name, got in results.items():
        rel = _rel(got, ref)
        print(f"parity {case} {name}: max rel diff {rel:.2e}")
        assert rel <= RTOL, name
        assert np.abs(_log_softmax(got) - _log_softmax(ref)).max() <= 1e-3


@pytest.mark.parametrize("case", ["r2p1d_basic_A_stem", "preresnet_bottleneck_B", "wideresnet_B", "resnext_B"])
@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_family_exports_match_the_checkpoint_network(tmp_path, capsys, case, fmt):
    family, depth, shortcut, opts = CASES[case]
    _, ckpt = _convert(tmp_path, case)
    args = [f"--{k}={v}" for k, v in opts.items()]
    cfg = load_config([f"--model={family}", f"--model_depth={depth}", f"--resnet_shortcut={shortcut}",
                       "--widen_factor=0.25", "--n_classes=6", "--sample_size=32", "--sample_duration=8",
                       f"--file_format={fmt}", "--device_target=CPU", f"--file_name={tmp_path / 'm'}", *args])
    net = build_model(cfg.arch)
    load_strict(net, ckpt)
    diff = export_network(net, cfg.file_format,
                          input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / f"m.{fmt.lower()}")
    print(f"parity {case} {fmt}: max abs diff of probabilities {diff:.2e}")
    assert diff <= 1e-5


def test_a_checkpoint_of_another_family_is_refused_in_one_line(tmp_path, capsys):
    _, ckpt = _convert(tmp_path, "r2p1d_basic_B")
    code = export.main([f"--ckpt_file={ckpt}", "--file_format=ONNX", "--device_target=CPU", "--model=resnet",
                        "--model_depth=18", "--widen_factor=0.25", "--n_classes=6", "--sample_size=32",
                        "--sample_duration=8", f"--file_name={tmp_path / 'x'}"])
    err = capsys.readouterr().err
    assert code != 0 and not (tmp_path / "x.onnx").exists()
    line = [ln for ln in err.splitlines() if "error:" in ln]
    # the converted checkpoint carries its settings: a contradicting --model is one error naming both
    assert len(line) == 1 and "--model=resnet but the model has 'resnet2p1d'" in line[0], line
    _, ckpt = _convert(tmp_path, "resnext_B")
    with pytest.raises(Exception, match=r"holds a resnext \(cardinality 4\) network but the config builds "
                                        r"resnext \(cardinality 32\)"):
        load_strict(build_model(_spec("resnext", 50, "B", {})), ckpt)


@pytest.mark.parametrize("case, start_ft, frozen, trained", [
    ("r2p1d_basic_B", "layer4", ("conv1_s", "bn1_t", "layer3"), ("layer4", "fc")),
    ("r2p1d_basic_B", "conv1", (), ("conv1_s", "conv1_t", "layer1", "fc")),
    ("preresnet_basic_A", "layer3", ("conv1", "layer2"), ("layer3", "layer4", "fc")),
    ("resnext_B", "fc", ("layer4",), ("fc",)),
])
def test_fine_tuning_follows_the_family(tmp_path, case, start_ft, frozen, trained):
    family, depth, shortcut, opts = CASES[case]
    tmodel, ckpt = _convert(tmp_path, case)
    net = build_model(_spec(family, depth, shortcut, opts, n_classes=3))
    msg = load_pretrained(net, ckpt, n_pretrain_classes=6)
    assert "fc replaced: pretrained head has 6 classes, model has 3" in msg
    first = next(iter(tmodel.state_dict()))
    np.testing.assert_array_equal(net.parameters_dict()[first].asnumpy(), tmodel.state_dict()[first].numpy())
    trainable = {p.name.split(".")[0] for p in freeze_before(net, start_ft)}
    assert trainable.isdisjoint(frozen) and set(trained) <= trainable


def test_densenet_is_refused_in_one_line(tmp_path, capsys):
    pth = tmp_path / "densenet-121-kinetics.pth"
    torch.save({"arch": "densenet-121", "state_dict": {"module.features.conv0.weight": torch.zeros(64, 3, 7, 7, 7),
                                                       "module.classifier.weight": torch.zeros(400, 1024)}}, pth)
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={tmp_path / 'd.ckpt'}"]) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "DenseNet" in err[0] and "not a 3D ResNet" in err[0]
    assert not (tmp_path / "d.ckpt").exists()


@pytest.mark.slow
def test_fine_tune_a_converted_r2p1d_with_train_py_then_eval(tiny_args, tmp_path, capsys, caplog):
    import eval as eval_script
    import train as train_script

    pth, ckpt = tmp_path / "r2p1d10.pth", tmp_path / "r2p1d10.ckpt"
    save_upstream_way(randomize(TorchFamily("resnet2p1d", 10, n_classes=6, widen_factor=0.125)), pth,
                      arch="resnet2p1d-10")
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    r2p1d = tiny_args + ["--model=resnet2p1d"]
    assert train_script.main(r2p1d + [f"--pretrain_path={ckpt}", "--n_pretrain_classes=6", "--start_ft=layer4",
                                      "--n_epochs=1", "--batch_size=8"]) == 0
    assert "fc replaced: pretrained head has 6 classes, model has 8" in caplog.text
    trained = next((tmp_path / "result").glob("resnet3d-synthetic-1_*.ckpt"))
    capsys.readouterr()
    # the checkpoint carries its family: eval.py builds it without --model; a contradicting --model is refused
    assert eval_script.main(tiny_args + [f"--inference_ckpt_path={trained}", "--model=resnet"]) == 2
    assert "--model=resnet but the model has 'resnet2p1d'" in capsys.readouterr().err
    assert eval_script.main(tiny_args + [f"--inference_ckpt_path={trained}", "--eval_subset=test"]) == 0
    assert "top-1: " in capsys.readouterr().out


def test_resnext_split_per_group_where_conv3d_refuses_groups(tmp_path, monkeypatch):
    """On Ascend (Conv3D groups only when depthwise) the grouped 3x3x3 runs as one conv per group, with
    the same parameter names and logits; forced here on CPU."""
    import src.models.families as families

    _, ckpt = _convert(tmp_path, "resnext_B")
    x = ms.Tensor(np.random.RandomState(2).randn(*CLIP).astype(np.float32))
    nets = {}
    for split in (False, True):
        monkeypatch.setattr(families, "split_groups", lambda split=split: split)
        net = build_model(_spec(*CASES["resnext_B"][:3], CASES["resnext_B"][3]))
        load_strict(net, ckpt)
        net.set_train(False)
        nets[split] = net
    assert isinstance(nets[True].layer1[0].conv2, families.SplitGroupConv3d)
    ref = nets[False](x).asnumpy()
    for name, got in (("split", nets[True](x).asnumpy()),
                      ("split inference", inference_network(nets[True], "native")(x).asnumpy())):
        rel = _rel(got, ref)
        print(f"resnext {name} vs grouped conv: max rel diff {rel:.2e}")
        assert rel <= 1e-5


@pytest.mark.parametrize("config, n_classes", [("ucf101_r2p1d_config.yaml", 101), ("hmdb51_r2p1d_config.yaml", 51)])
def test_r2p1d_fine_tuning_config(config, n_classes):
    import yaml

    from src.config import REPO_ROOT
    from src.config_keys import KEYS

    path = REPO_ROOT / config
    assert list(yaml.safe_load(open(path))) == list(KEYS)
    cfg = load_config([f"--config_path={path}"])
    assert (cfg.model, cfg.model_depth, cfg.n_pretrain_classes, cfg.n_classes) == ("resnet2p1d", 18, 700, n_classes)
    net = build_model(cfg.arch)
    # stem width 3*64*7*49 // (3*49 + 7*64) = 110
    assert net.architecture == "resnet2p1d" and tuple(net.conv1_s.weight.shape) == (110, 3, 1, 7, 7)


@pytest.mark.slow
@pytest.mark.parametrize("family, depth, n_classes, arch, options", [
    ("resnet2p1d", 18, 700, "resnet2p1d-18", {}),        # r2p1d18_K_200ep.pth
    ("resnext", 101, 400, "resnext-101", {}),            # resnext-101-kinetics.pth
    ("wideresnet", 50, 400, "wideresnet-50", {}),        # wideresnet-50-kinetics.pth
])
def test_released_sizes_convert_and_match_log_softmax(tmp_path, capsys, family, depth, n_classes, arch, options):
    """The released architectures at full width on a 16x112x112 clip (their training size, where the
    CVPR 2018 fixed pool is the global average)."""
    fixed_pool = {} if family == "resnet2p1d" else {"sample_size": 112, "sample_duration": 16}
    tmodel = randomize(TorchFamily(family, depth, n_classes=n_classes, **fixed_pool), seed=depth)
    pth, ckpt = tmp_path / "m.pth", tmp_path / "m.ckpt"
    save_upstream_way(tmodel, pth, arch=arch)
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    out = capsys.readouterr().out
    assert f"architecture: {family}" in out and f"depth {depth} " in out and f"{n_classes} classes" in out
    net = build_model(ModelSpec(model=family, model_depth=depth, n_classes=n_classes))
    load_strict(net, ckpt)
    net.set_train(False)
    x = np.random.RandomState(0).randn(1, 3, 16, 112, 112).astype(np.float32)
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    got = inference_network(net, "auto")(ms.Tensor(x)).asnumpy()
    rel, lsm = _rel(got, ref), float(np.abs(_log_softmax(got) - _log_softmax(ref)).max())
    print(f"released size {arch}: inference network max rel diff {rel:.2e}, log-softmax max abs diff {lsm:.2e}")
    assert rel <= RTOL and lsm <= 1e-3


@pytest.mark.skipif(not FUSED, reason="fast op library not built")
@pytest.mark.parametrize("mode", ["pynative", pytest.param("graph", marks=pytest.mark.slow)])
def test_resnext_fast_grouped_conv_gradients_match_native(mode, request):
    """ResNeXt with conv_impl fast runs its grouped 3x3x3 through the fast op, one grouped primitive per pass,
    forward and backward: every parameter's gradient equals the native network's (eval-mode BN: tiny clips make
    batch statistics ill-conditioned)."""
    from src.ops.fast_conv3d import FastConv3d

    if mode == "graph":
        request.getfixturevalue("graph_mode")
    spec = _spec("resnext", 50, "B", {"resnext_cardinality": 4}, n_classes=5)
    ms.set_seed(0)
    nets = {"native": build_model(spec, "native"), "fast": build_model(spec, "fast")}
    conv2 = nets["fast"].layer2[0].conv2
    assert isinstance(conv2, FastConv3d) and conv2.groups == 4  # one grouped primitive per pass
    values = {p.name: p.asnumpy() for p in nets["native"].get_parameters()}
    for p in nets["fast"].get_parameters():
        p.set_data(ms.Tensor(values[p.name]))
    x = ms.Tensor(np.random.RandomState(0).randn(2, 3, 8, 32, 32).astype(np.float32))
    y = ms.Tensor(np.array([1, 3], np.int32))
    loss = ms.nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    grads = {}
    for name, net in nets.items():
        net.set_train(False)
        params = net.trainable_params()
        g = ms.grad(ms.nn.WithLossCell(net, loss), None, params)(x, y)
        grads[name] = {p.name: v.asnumpy() for p, v in zip(params, g)}
    worst = max(float(np.abs(grads["fast"][k] - v).max() / np.abs(v).max()) for k, v in grads["native"].items())
    print(f"resnext fast vs native gradients ({mode}): max rel diff {worst:.2e}")
    assert worst <= 1e-4
