"""Pretrained weights bring their architecture: train.py / extract_features.py --pretrain_path of a file whose record
names a family, depth and widths build that network with no model flags (said in one line); only the head follows
the annotation; an explicit model flag that contradicts the file is one error naming both."""
import json

import numpy as np

import pytest

import extract_features
import train as train_script
from src.config import load_config
from src.models.factory import build_model
from src.models.families import architecture_name
from src.weights.checkpoint import ARCHITECTURE_KEY, read_entries, save_checkpoint
from src.weights.model_file import KEY, record_of
from tests.helpers.tiny import TINY, tiny_options

# a 5-class R(2+1)D with a non-default stem: nothing of it matches the tiny run's config but depth and width
PRETRAINED = {"model": "resnet2p1d", "n_classes": 5, "conv1_t_size": 3, "resnet_shortcut": "A"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    cfg = load_config(tiny_options(**PRETRAINED))
    net = build_model(cfg.arch)
    path = tmp_path_factory.mktemp("pretrained") / "r2p1d_5.ckpt"
    save_checkpoint(net, path, append_dict={ARCHITECTURE_KEY: architecture_name(cfg.arch),
                                            KEY: record_of(cfg).to_json()})
    return path


def _without_model_flags(args):
    return [a for a in args if not a.startswith(("--model_depth", "--widen_factor", "--n_classes"))]


def test_fine_tuning_builds_the_files_architecture(tiny_args, pretrained, tmp_path, caplog):
    args = _without_model_flags(tiny_args) + [f"--pretrain_path={pretrained}", "--n_epochs=1", "--batch_size=8",
                                             f"--model_depth={TINY['model_depth']}",
                                             f"--widen_factor={TINY['widen_factor']}"]
    with caplog.at_level("INFO", logger="resnet3d"):
        assert train_script.main(args) == 0
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("architecture from ")]
    assert said == [f"architecture from {pretrained}: model='resnet2p1d', model_depth=10, resnet_shortcut='A', "
                    f"conv1_t_size=3, conv1_t_stride=1, no_max_pool=False, widen_factor=0.125, wide_resnet_k=2, "
                    f"resnext_cardinality=32, n_input_channels=3, mean=[0.4345, 0.4051, 0.3775], "
                    f"std=[0.2768, 0.2713, 0.2737] (the head follows the annotation's classes)"]
    record = json.loads(read_entries(next((tmp_path / "result").glob("resnet3d-synthetic-*.ckpt")), (KEY,))[KEY])
    assert (record["model"], record["conv1_t_size"], record["resnet_shortcut"], record["n_classes"]) == \
        ("resnet2p1d", 3, "A", 8), "the head follows the annotation's 8 classes"


def test_a_contradicting_model_flag_is_one_error_naming_both(tiny_args, pretrained, capsys):
    code = train_script.main(tiny_args + [f"--pretrain_path={pretrained}", "--model=resnet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: --pretrain_path={pretrained} holds another architecture (--model=resnet but "
                                 f"the file has 'resnet2p1d'): drop those options (the file's architecture is used), "
                                 f"or pass weights of the architecture you want"]


def test_feature_extraction_from_pretrained_weights_needs_no_model_flags(tiny_dataset, pretrained, tmp_path):
    args = [f"--pretrain_path={pretrained}", f"--video_path={tiny_dataset['video_path']}", "--device_target=CPU",
            f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={tmp_path}", "--dataset=synthetic",
            "--sample_size=32", "--sample_duration=4", "--inference_stride=4", "--model_depth=10",
            "--widen_factor=0.125"]
    assert extract_features.main(args) == 0
    features = np.load(tmp_path / "synthetic_validation_features.npy")
    assert features.shape[0] == 8 and np.isfinite(features).all()
