"""pth_to_ckpt.py: exact conversion of upstream-style .pth files, and clear errors for bad files."""
from pathlib import Path

import numpy as np
import pytest
import torch

import mindspore as ms
import pth_to_ckpt
from src.models.resnet3d import generate_model
from src.weights.checkpoint import load_pretrained, load_strict
from tests.helpers.torch_reference import TorchResNet3D, randomize


def _save(tmodel, path, wrap):
    state = tmodel.state_dict()
    if wrap in ("module", "both"):
        state = {f"module.module.{k}" if wrap == "both" else f"module.{k}": v for k, v in state.items()}
    if wrap in ("state_dict", "both"):
        state = {"arch": "resnet", "state_dict": state, "epoch": 200}
    torch.save(state, path)


@pytest.mark.parametrize("depth, shortcut, widen, shape, wrap", [
    (50, "B", 1.0, (1, 3, 16, 112, 112), "module"),     # the released architecture at full size
    (18, "B", 0.5, (1, 3, 16, 112, 112), "state_dict"),
    (18, "A", 0.5, (2, 3, 8, 64, 64), "plain"),
    (10, "A", 0.5, (2, 3, 8, 64, 64), "both"),
    (10, "B", 0.5, (2, 3, 8, 64, 64), "plain"),
])
def test_converted_weights_reproduce_upstream_logits(tmp_path, capsys, depth, shortcut, widen, shape, wrap):
    tmodel = randomize(TorchResNet3D(depth, n_classes=700, shortcut_type=shortcut, widen_factor=widen), seed=depth)
    pth, ckpt = tmp_path / "m.pth", tmp_path / "m.ckpt"
    _save(tmodel, pth, wrap)
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    out = capsys.readouterr().out
    assert f"depth {depth} " in out and f"shortcut {shortcut}" in out and "700 classes" in out
    net = generate_model(depth, n_classes=700, resnet_shortcut=shortcut, widen_factor=widen)
    load_strict(net, ckpt)
    net.set_train(False)
    x = np.random.RandomState(0).randn(*shape).astype(np.float32)
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    diff = np.abs(net(ms.Tensor(x)).asnumpy() - ref).max()
    print(f"parity depth={depth} shortcut={shortcut} max_abs_diff={diff:.2e}")
    assert diff <= 1e-4


def test_fine_tuning_replaces_only_fc(tmp_path, capsys, caplog):
    tmodel = randomize(TorchResNet3D(10, n_classes=700, widen_factor=0.25), seed=0)
    pth, ckpt = tmp_path / "m.pth", tmp_path / "m.ckpt"
    _save(tmodel, pth, "plain")
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 0
    results = [r.getMessage() for r in caplog.records if r.name == "resnet3d.out"]  # through the result logger
    assert results[0].startswith("architecture: resnet depth 10") and results[-1].endswith(f"tensors: {pth} -> {ckpt}")
    net = generate_model(10, n_classes=51, widen_factor=0.25)
    fc_before = net.fc.weight.asnumpy().copy()
    msg = load_pretrained(net, ckpt)
    assert "fc replaced: pretrained head has 700 classes, model has 51" in msg
    np.testing.assert_array_equal(net.fc.weight.asnumpy(), fc_before)
    np.testing.assert_array_equal(net.conv1.weight.asnumpy(), tmodel.conv1.weight.detach().numpy())
    with pytest.raises(Exception, match="shape mismatch: fc.bias"):
        load_strict(generate_model(10, n_classes=51, widen_factor=0.25), ckpt)
    with pytest.raises(Exception, match="does not match the model") as mismatch:
        load_pretrained(generate_model(18, n_classes=51, widen_factor=0.25), ckpt)
    # the fix it names builds the checkpoint's network around the data's head (no --n_classes=700)
    hint = str(mismatch.value).split(": pass ")[1]
    assert "--n_classes=" not in hint and "keep the --n_classes of your data" in hint
    flags = dict(f.lstrip("-").split("=") for f in hint.split(" (its fc")[0].split())
    load_pretrained(generate_model(int(flags["model_depth"]), n_classes=51, widen_factor=float(flags["widen_factor"]),
                                   resnet_shortcut=flags["resnet_shortcut"]), ckpt)
    with pytest.raises(Exception, match="700-class head but --n_pretrain_classes is 1039"):
        load_pretrained(generate_model(10, n_classes=51, widen_factor=0.25), ckpt, n_pretrain_classes=1039)


def _truncated(path):
    torch.save(randomize(TorchResNet3D(10, n_classes=3, widen_factor=0.125)).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_text("<!DOCTYPE html><html><body>Not Found</body></html>"), "is an HTML/XML page"),
    (_truncated, "probably truncated"),
    (lambda p: (ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.zeros(3, np.float32))}], f"{p}.ckpt"),
                Path(f"{p}.ckpt").rename(p)), "looks like a MindSpore checkpoint already"),
    (lambda p: torch.save({"net": torch.nn.Linear(2, 2)}, p), "refusing to run code"),
    (lambda p: torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(2, 1), "weird": torch.zeros(1)}, p),
     "keys have no rename rule: weird"),
    (lambda p: torch.save({k: v for k, v in randomize(TorchResNet3D(10, n_classes=3, widen_factor=0.125))
                           .state_dict().items() if "layer2.0.bn1" not in k}, p),
     "missing 4: layer2.0.bn1.bn2d.beta"),
])
def test_bad_files_get_one_line_and_no_output(tmp_path, capsys, make, message):
    pth, ckpt = tmp_path / "bad.pth", tmp_path / "out.ckpt"
    make(pth)
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={ckpt}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error: ") and len(err.splitlines()) == 1
    assert not ckpt.exists() and not list(tmp_path.glob("*.tmp*"))


def test_forced_depth_that_contradicts_tensors_fails(tmp_path, capsys):
    pth = tmp_path / "m.pth"
    _save(randomize(TorchResNet3D(10, n_classes=3, widen_factor=0.125)), pth, "plain")
    assert pth_to_ckpt.main([f"--pth_path={pth}", f"--ckpt_path={tmp_path / 'o.ckpt'}", "--model_depth=18"]) == 2
    assert "do not form a resnet depth 18" in capsys.readouterr().err
