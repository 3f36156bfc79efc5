"""src/train/trainer.py's recipe rules: start_ft follows the weights, a schedule that never reaches lr_max is
said once, and the resume fingerprint records what the run really uses."""
import json
import logging

import numpy as np
import pytest

from src.config import load_config
from src.errors import UserError
from src.config_keys import result_keys
from src.train.lr import create_schedule
from src.train.trainer import RESULT_SECTIONS, effective_start_ft, fingerprint, warn_if_lr_max_unreached


def test_without_weights_every_layer_trains_and_says_so(caplog):
    cfg = load_config(["--device_target=CPU"])  # the original's ucf101_config.yaml: start_ft layer4
    with caplog.at_level(logging.INFO):
        assert effective_start_ft(cfg.start_ft, cfg.pretrain_path) == "conv1"
    assert "start_ft=conv1: no pretrained weights, so every layer trains" in caplog.text
    assert fingerprint(_result_sections(cfg), start_ft="conv1")["start_ft"] == "conv1"


def test_with_weights_the_config_value_holds(tmp_path):
    cfg = load_config(["--device_target=CPU", f"--pretrain_path={tmp_path / 'w.ckpt'}"])
    assert effective_start_ft(cfg.start_ft, cfg.pretrain_path) == "layer4"


def test_an_explicit_start_ft_without_weights_is_an_error():
    cfg = load_config(["--device_target=CPU", "--start_ft=layer3"])
    with pytest.raises(UserError, match=r"--start_ft=layer3 freezes .* no pretrained weights .* --start_ft=conv1"):
        effective_start_ft(cfg.start_ft, cfg.pretrain_path, given="start_ft" in cfg.explicit)
    assert effective_start_ft(cfg.start_ft, cfg.pretrain_path) == "conv1"  # a config file's value: said, not refused


def test_the_fingerprint_of_the_sections_is_the_one_old_checkpoints_hold():
    """Made from the result sections, the fingerprint has the keys and values it had when it was made key by key
    from the whole config (result_keys), so the result folders of earlier runs still resume."""
    cfg = load_config(["--device_target=CPU", "--lr_milestones=[3, 5]", "--mean=[0.5, 0.5, 0.5]", "--h_flip=True"])
    made = fingerprint(_result_sections(cfg), start_ft="conv1", amp_level="O0", n_epochs=7)
    assert made == {**{k: cfg[k] for k in result_keys()}, "start_ft": "conv1", "amp_level": "O0"}
    assert json.dumps(made, sort_keys=True) == json.dumps(
        {k: {"start_ft": "conv1", "amp_level": "O0"}.get(k, cfg[k]) for k in result_keys()}, sort_keys=True)
    assert set(RESULT_SECTIONS) == {"placement", "arch", "data", "evaluation", "optimisation", "schedule"}


def _result_sections(cfg):
    return [getattr(cfg, name) for name in RESULT_SECTIONS]


def test_a_warm_up_as_long_as_the_run_is_one_warning(caplog):
    cfg = load_config(["--device_target=CPU", "--n_epochs=3"])  # warmup_epochs 15, lr_max 0.03
    rates = create_schedule(cfg.schedule, n_epochs=cfg.n_epochs, steps_per_epoch=10)
    with caplog.at_level(logging.WARNING):
        warn_if_lr_max_unreached(rates, cfg.lr_max, cfg.warmup_epochs, cfg.n_epochs)
    assert len(caplog.records) == 1 and "never reaches lr_max=0.03 (at most 0.00" in caplog.text
    caplog.clear()
    warn_if_lr_max_unreached(np.full(5, 0.03, np.float32), 0.03, 1, 20)
    assert not caplog.records
