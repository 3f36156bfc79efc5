"""export.py: every format that works here, re-load parity for default and non-default stems, errors."""
import mindspore as ms
import numpy as np
import onnx
import pytest

import export
from src.config import load_config
from src.deploy.export import export_network, input_shape, random_clip
from src.deploy.graph import explicit_padding
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options
from src.errors import UserError
from src.metrics import softmax
from src.models.factory import build_model

# stems the exporter mis-wrote before explicit_padding (conv pads (t//2,3,3); padded max-pool)
STEMS = [
    {"conv1_t_size": 7, "conv1_t_stride": 1},
    {"conv1_t_size": 3, "conv1_t_stride": 1, "resnet_shortcut": "A"},
    {"conv1_t_size": 5, "conv1_t_stride": 2, "widen_factor": 0.25},
    {"conv1_t_size": 1, "conv1_t_stride": 1, "no_max_pool": True},
]


def _cfg(tmp_path, fmt, **overrides):
    args = tiny_options(**{"sample_duration": 8, **overrides})
    return load_config(args + [f"--file_format={fmt}", "--device_target=CPU", f"--file_name={tmp_path / 'm'}"])


def _trained_net(cfg, seed=0):
    ms.set_seed(seed)
    net = build_model(cfg.arch)
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():  # BN statistics away from the identity, so padding errors show
        if p.name.endswith("moving_mean"):
            p.set_data(ms.Tensor(rng.normal(0, 0.5, p.shape).astype(np.float32)))
    net.set_train(False)
    return net


@pytest.mark.parametrize("stem", STEMS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_onnx_parity_for_every_stem(tmp_path, stem):
    cfg = _cfg(tmp_path, "ONNX", **stem)
    # the parity it checked and printed
    diff = export_network(_trained_net(cfg), cfg.file_format,
                          input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / "m.onnx")
    assert diff <= 1e-5
    onnx.checker.check_model(str(tmp_path / "m.onnx"))


def test_onnx_without_explicit_padding_is_caught_and_not_written(tmp_path, monkeypatch):
    """The exporter's own pads are wrong (max-pool SAME_UPPER, conv pads order): the check must refuse."""
    import src.deploy.export as export_module

    monkeypatch.setattr(export_module, "explicit_padding", lambda net: net)
    cfg = _cfg(tmp_path, "ONNX", conv1_t_size=7)
    with pytest.raises(UserError, match="differs from the checkpoint"):
        export_network(_trained_net(cfg), cfg.file_format,
                       input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the final file nor the temporary one


def test_explicit_padding_keeps_values_and_names():
    cfg = load_config(tiny_options(conv1_t_size=3, sample_duration=8))
    net = _trained_net(cfg)
    names = [p.name for p in net.get_parameters()]
    x = ms.Tensor(random_clip((2, 3, 8, 32, 32)))
    before = net(x).asnumpy()
    explicit_padding(net)
    assert [p.name for p in net.get_parameters()] == names
    np.testing.assert_allclose(net(x).asnumpy(), before, atol=1e-6)


@pytest.mark.parametrize("model", ["tv_r2plus1d", "tv_mc3"])
def test_explicit_padding_reaches_convolutions_inside_sequential_cells(tmp_path, model):
    """torchvision's families keep their convolutions in nn.SequentialCell at two depths (stem.0,
    layer1.0.conv1.0.0): a SequentialCell runs the list of cells it was built with, so a conv replaced there
    by name alone would still run padded, and the ONNX export would differ from the checkpoint."""
    from mindspore import nn

    from src.deploy.graph import PaddedConv3d

    cfg = _cfg(tmp_path, "ONNX", model=model, widen_factor=0.125)
    net = _trained_net(cfg)
    x = ms.Tensor(random_clip((2, 3, 8, 32, 32)))
    before = net(x).asnumpy()
    explicit_padding(net)
    running = [cell for _, seq in net.cells_and_names() if isinstance(seq, nn.SequentialCell) for cell in seq.cell_list]
    padded = [cell for cell in running if isinstance(cell, nn.Conv3d) and len(set(np.ravel(cell.padding))) > 1]
    assert not padded and sum(isinstance(cell, PaddedConv3d) for cell in running) >= 4
    np.testing.assert_allclose(net(x).asnumpy(), before, atol=1e-6)
    diff = export_network(_trained_net(cfg), cfg.file_format,
                          input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / "m.onnx")
    assert diff <= 1e-5


def test_mindir_parity_batch_2(tmp_path):
    cfg = _cfg(tmp_path, "MINDIR", conv1_t_size=3, export_batch_size=2)
    diff = export_network(_trained_net(cfg), cfg.file_format,
                          input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / "m.mindir")
    assert diff <= 1e-5


def test_export_script_onnx_and_mindir(tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt", conv1_t_size=5)
    base = [f"--ckpt_file={ckpt}", "--device_target=CPU", "--batch_size=2", "--conv1_t_size=5"] + tiny_options()
    for fmt, ext in (("ONNX", "onnx"), ("MINDIR", "mindir")):
        assert export.main(base + [f"--file_format={fmt}", f"--file_name={tmp_path / 'out'}"]) == 0
        out = capsys.readouterr().out
        assert f"parity {fmt}" in out and f"out.{ext}" in out
        assert (tmp_path / f"out.{ext}").is_file()
    model = onnx.load(str(tmp_path / "out.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 4, 32, 32]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    log, = tmp_path.glob("*_export.log")  # every line printed, through the log handlers, beside the exports
    text = log.read_text()
    assert text.count("=== ") == 2 and "parity ONNX" in text and "parity MINDIR" in text
    assert f"-> {tmp_path / 'out.mindir'} (MINDIR" in text


def test_mindir_export_on_a_full_disk_is_one_error_line_and_no_file(tmp_path, mount_tmpfs, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    target = mount_tmpfs("size=256k")  # the tiny MINDIR takes about 900 kB
    code = export.main([f"--ckpt_file={ckpt}", "--file_format=MINDIR", "--device_target=CPU",
                        f"--file_name={target / 'm'}"] + tiny_options())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (f"error: cannot write {target / 'm.mindir'} (No space left on device): check "
                                     f"free space and permissions of {target}; nothing was written"), err[-5:]
    assert [p.name for p in target.iterdir() if not p.name.endswith("_export.log")] == []


def test_exported_onnx_output_is_softmax(tmp_path):
    from src.inference.predictors import onnx_predictor

    cfg = _cfg(tmp_path, "ONNX")
    net = _trained_net(cfg)
    export_network(net, cfg.file_format, input_shape(cfg.export_batch_size, cfg.arch, cfg.data), tmp_path / "m.onnx")
    x = random_clip((1, 3, 8, 32, 32), seed=3)
    probs = onnx_predictor(tmp_path / "m.onnx")(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, softmax(net(ms.Tensor(x)).asnumpy()), atol=1e-5)


def test_wrong_n_classes_names_the_difference(tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    code = export.main([f"--ckpt_file={ckpt}", "--file_format=ONNX", "--device_target=CPU",
                        f"--file_name={tmp_path / 'x'}"] + tiny_options(n_classes=51))
    err = capsys.readouterr().err
    assert code == 2 and "fc.weight" in err and "8 classes" in err
    assert not (tmp_path / "x.onnx").exists()


def test_wrong_depth_is_an_error(tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    code = export.main([f"--ckpt_file={ckpt}", "--file_format=MINDIR", "--device_target=CPU",
                        f"--file_name={tmp_path / 'x'}"] + tiny_options(model_depth=18))
    assert code == 2 and "does not match the model" in capsys.readouterr().err


def test_air_needs_ascend(tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    code = export.main([f"--ckpt_file={ckpt}", "--file_format=AIR", "--device_target=CPU",
                        f"--file_name={tmp_path / 'x'}"] + tiny_options())
    assert code == 2 and "AIR export needs an Ascend" in capsys.readouterr().err
    assert list(tmp_path.glob("x*")) == []


def test_missing_checkpoint(tmp_path, capsys):
    code = export.main([f"--ckpt_file={tmp_path / 'none.ckpt'}", "--file_format=ONNX", "--device_target=CPU"])
    assert code == 2 and "not found" in capsys.readouterr().err
