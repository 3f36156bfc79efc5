"""src/config.py: YAML layout, overrides, choices, unknown keys, saving."""
import pytest
import yaml

from src.config import REPO_ROOT, ConfigError, load_config, save_config
from src.config_keys import KEYS

UCF = REPO_ROOT / "ucf101_config.yaml"
HMDB = REPO_ROOT / "hmdb51_config.yaml"

ORIGINAL_UCF = dict(n_classes=101, sample_size=112, sample_duration=16, sample_t_stride=1, train_crop="center",
                    h_flip=False, colorjitter=False, train_crop_min_scale=0.25, train_crop_min_ratio=0.75,
                    train_t_crop="random", inference_stride=16, ignore=True, start_ft="layer4", loss_scale=1024,
                    momentum=0.9, weight_decay=0.001, batch_size=128, n_epochs=200, save_checkpoint_epochs=1,
                    keep_checkpoint_max=20, lr_decay_mode="steps", warmup_epochs=15, lr_init=0, lr_max=0.03,
                    lr_end=0, eval_in_training=False, model_depth=50, resnet_shortcut="B", conv1_t_size=7,
                    conv1_t_stride=1, no_max_pool=False, widen_factor=1.0, n_pretrain_classes=0)


def test_original_values_and_one_declaration_per_key():
    cfg = load_config([], default_config=UCF)
    for key, value in ORIGINAL_UCF.items():
        assert cfg[key] == value, key
    hmdb = load_config([], default_config=HMDB)
    assert (hmdb.n_classes, hmdb.warmup_epochs, hmdb.lr_max) == (51, 5, 0.01)
    values = yaml.safe_load(open(UCF))
    assert list(values) == list(KEYS), "ucf101_config.yaml lists every declared key, in order"
    assert {k: KEYS[k].default for k in KEYS} == values, "the declared defaults are ucf101_config.yaml's values"
    assert all(KEYS[k].help for k in KEYS)
    for path in (HMDB, REPO_ROOT / "demo_config.yaml", REPO_ROOT / "ucf101_upstream_config.yaml"):
        assert list(yaml.safe_load(open(path))) == list(KEYS), path


def test_original_three_document_files_still_load(tmp_path):
    original = tmp_path / "original.yaml"
    original.write_text("n_classes: 51\nbatch_size: 128\n---\nn_classes: 'help'\n---\nn_classes: [51]\n")
    cfg = load_config([f"--config_path={original}"])
    assert cfg.n_classes == 51 and cfg.lr_max == 0.03 and isinstance(cfg.warmup_epochs, float)


@pytest.mark.parametrize("text, message", [
    ("", "sets no keys"),
    ("batch_sise: 3\n", "unknown key 'batch_sise' (did you mean 'batch_size'?)"),
    ("batch_size: many\n", "batch_size: 'many' is not a int"),
    ("- a\n- b\n", "must be a mapping"),
])
def test_bad_config_files_are_one_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config([f"--config_path={path}"])
    assert message in str(err.value) and str(path) in str(err.value)


def test_binary_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="is not a text file|is not valid YAML"):
        load_config([f"--config_path={path}"])


@pytest.mark.parametrize("option", ["--sample_size=0", "--sample_duration=0", "--train_crop_min_ratio=0",
                                    "--widen_factor=0", "--save_checkpoint_epochs=0", "--eval_interval=0",
                                    "--eval_batch_size=0", "--inference_stride=0", "--keep_checkpoint_max=0",
                                    "--keep_checkpoint_max=-1", "--batch_size=0", "--label_smoothing=1"])
def test_values_out_of_range_are_refused(option):
    key = option.split("=")[0]
    with pytest.raises(ConfigError, match=f"^{key}=[-0-9.]+ must"):
        load_config([option])


def test_file_name_with_a_space_is_refused():
    with pytest.raises(ConfigError, match="must not contain spaces"):
        load_config(["--file_name=my model"])


def test_explicit_keys_are_recorded():
    assert load_config(["--device_id=3", "--lr_max=0.1"]).explicit == {"device_id", "lr_max"}


def test_overrides_both_forms_and_types(tmp_path):
    cfg = load_config(["--batch_size=8", "--lr_max", "0.5", "--h_flip=True", "--result_path=~/x",
                       "--lr_milestones=[3,6]", "--model_depth", "18"])
    assert cfg.batch_size == 8 and isinstance(cfg.batch_size, int)
    assert cfg.lr_max == 0.5 and cfg.h_flip is True and cfg.model_depth == 18
    assert cfg.lr_milestones == [3, 6]
    assert not cfg.result_path.startswith("~")
    assert cfg.config_path.endswith("ucf101_config.yaml")


def test_config_path_selects_file():
    assert load_config([f"--config_path={HMDB}"]).n_classes == 51


@pytest.mark.parametrize("argv, message", [
    (["--batch_sise=3"], "unknown option --batch_sise (did you mean 'batch_size'?)"),
    (["--lr_decay_mode=exp"], "--lr_decay_mode: 'exp' is not one of poly, steps, linear, cosine"),
    (["--model_depth=20"], "--model_depth: '20' is not one of 10, 18, 34, 50, 101, 152, 200"),
    (["--batch_size=many"], "--batch_size: 'many' is not an integer"),
    (["--h_flip=maybe"], "--h_flip: 'maybe' is not a boolean"),
    (["--batch_size"], "--batch_size needs a value"),
    (["stray"], "unexpected argument 'stray'"),
    (["--config_path=/nonexistent.yaml"], "config file /nonexistent.yaml not found"),
])
def test_errors_name_the_option(argv, message):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert message in str(err.value)


def test_aliases():
    cfg = load_config(["--batch_size=4"], aliases={"batch_size": "export_batch_size"})
    assert cfg.export_batch_size == 4 and cfg.batch_size == 128


def test_save_resolved_config_round_trip(tmp_path):
    cfg = load_config(["--n_epochs=3"])
    path = save_config(cfg, tmp_path / "run" / "config_resolved.yaml")
    saved = yaml.safe_load(open(path))
    assert saved["n_epochs"] == 3 and saved["config_path"] == cfg.config_path
    again = load_config([f"--config_path={path}"])  # a saved config is itself a valid config
    assert again.n_epochs == 3


def test_script_only_options_are_parsed_like_config_keys():
    cfg = load_config(["--video=a.avi", "--labels", "l.json"], extra={"video": "", "labels": "", "onnx": ""})
    assert (cfg.video, cfg.labels, cfg.onnx) == ("a.avi", "l.json", "")
    with pytest.raises(ConfigError, match="unknown option --vidoe \\(did you mean 'video'\\?\\)"):
        load_config(["--vidoe=a.avi"], extra={"video": ""})


def test_the_upstream_recipe_as_its_maintainer_posted_it():
    cfg = load_config([f"--config_path={REPO_ROOT / 'ucf101_upstream_config.yaml'}"])
    assert (cfg.lr_max, cfg.momentum, cfg.weight_decay, cfg.nesterov, cfg.batch_size, cfg.n_epochs) == \
        (0.001, 0.9, 1e-5, False, 128, 300)
    assert (cfg.lr_decay_mode, cfg.plateau_patience, cfg.start_ft, cfg.model_depth, cfg.warmup_epochs) == \
        ("plateau", 10, "layer4", 18, 0)
    assert (cfg.label_smoothing, cfg.sample_size, cfg.sample_duration, cfg.inference_stride) == (0.0, 112, 16, 16)


def test_one_precedence_rule_command_line_then_environment_then_yaml(monkeypatch, caplog):
    """The environment beats the YAML and loses to the command line, once, in the config: the runtime
    does not read the environment again behind an explicit --conv_impl=auto."""
    from src.ops import fast_conv3d_status
    from src.runtime import resolve_conv_impl

    monkeypatch.setenv("RESNET3D_CONV_IMPL", "native")
    monkeypatch.setenv("DEVICE_ID", "3")
    with caplog.at_level("INFO"):
        cfg = load_config(["--device_id=1"])
    assert (cfg.conv_impl, cfg.device_id) == ("native", 1)
    assert "device_id=1 from the command line (DEVICE_ID=3 in the environment ignored)" in caplog.text
    assert "conv_impl=native from RESNET3D_CONV_IMPL in the environment" in caplog.text
    cfg = load_config(["--conv_impl=auto"])
    assert cfg.conv_impl == "auto"
    if fast_conv3d_status()[0]:
        assert resolve_conv_impl("CPU", cfg.conv_impl) == "fast"  # the environment's native stays ignored
    assert resolve_conv_impl("CPU", None) == "native"  # a caller that chose nothing gets the environment
    monkeypatch.setenv("DEVICE_ID", "x")
    with pytest.raises(ConfigError, match="DEVICE_ID='x' in the environment is not a valid device_id"):
        load_config([])
