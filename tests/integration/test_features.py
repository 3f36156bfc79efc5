"""extract_features.py: one pooled feature per video, equal to what the model's own forward feeds its fc."""
import csv

import mindspore as ms
import numpy as np

import extract_features
from src.config import load_config
from src.models.factory import build_model
from src.weights.checkpoint import load_strict
from tests.helpers.tiny import make_tiny_checkpoint, make_tiny_dataset, tiny_eval_dataset, tiny_options


def test_features_match_the_models_forward(tmp_path, capsys):
    jpg, ann = make_tiny_dataset(tmp_path / "data", frames=12)
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt", seed=5)
    args = tiny_options() + ["--device_target=CPU", "--mode=PYNATIVE", f"--video_path={jpg}",
                          f"--annotation_path={ann}", f"--result_path={tmp_path / 'out'}", "--test_clips=2"]
    assert extract_features.main(args + [f"--ckpt_file={ckpt}", "--subset=val"]) == 0
    assert "features: 8 videos x 64 (16 views)" in capsys.readouterr().out
    log = (tmp_path / "out" / "ucf101_features.log").read_text()  # the result line, kept beside the results
    assert log.startswith("=== ") and "features: 8 videos x 64 (16 views)" in log
    features = np.load(tmp_path / "out" / "ucf101_validation_features.npy")
    with open(tmp_path / "out" / "ucf101_validation_features.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert features.shape == (8, 64) and features.dtype == np.float32 and len(rows) == 8
    # reference: the model's logits per view, averaged per video; fc is linear, so fc(mean feature) equals it
    cfg = load_config(args)
    net = build_model(cfg.arch)
    load_strict(net, ckpt)
    net.set_train(False)
    dataset, index = tiny_eval_dataset(cfg)
    sums = np.zeros((8, 8))
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        np.add.at(sums, batch["video_index"], net(ms.Tensor(batch["clip"])).asnumpy())
    mean_logits = sums / 2
    w, b = net.fc.weight.asnumpy(), net.fc.bias.asnumpy()
    np.testing.assert_allclose(features @ w.T + b, mean_logits, rtol=1e-4, atol=1e-4)
    assert [r["video"] for r in rows] == [v for v, _ in index.videos]
    assert rows[0]["label"] == index.class_names[index.videos[0][1]]


def test_exactly_one_source_of_weights(tmp_path, capsys):
    assert extract_features.main(tiny_options() + ["--device_target=CPU"]) == 2
    assert "exactly one of --ckpt_file" in capsys.readouterr().err
