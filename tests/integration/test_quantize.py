"""quantize.py end to end on a tiny trained model (a result folder as --ckpt_file), eval.py on the INT8 file
(the usual lines; top-1 agreement with FP32 over the evaluated clips), --dump_calibration's files, and the error
lines: a tampered INT8 record, an INT8 file where the float network is needed, quantize.py's own options."""
import json
from pathlib import Path

import numpy as np
import pytest

import eval as eval_script
import quantize
import train as train_script


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """A tiny model trained for 3 epochs on the tiny dataset: (its result folder, the data options)."""
    from tests.helpers.tiny import tiny_run_args

    result = tmp_path_factory.mktemp("int8") / "train"
    args = tiny_run_args(tiny_dataset, result, "--n_epochs=3", "--batch_size=4", "--warmup_epochs=0", "--lr_max=0.05")
    assert train_script.main(args) == 0
    data = ["--device_target=CPU", "--dataset=synthetic", f"--video_path={tiny_dataset['video_path']}",
            f"--annotation_path={tiny_dataset['annotation_path']}", "--num_workers=1", "--eval_batch_size=8"]
    return result, data


def _clip_predictions(path):
    return {(c["video"], c["window"]): (c["pred"], c["score"]) for c in json.loads(Path(path).read_text())}


def test_quantize_then_eval(trained, tmp_path, capsys):
    result, data = trained
    int8 = tmp_path / "model_int8.ckpt"
    assert quantize.main(data + [f"--ckpt_file={result}", f"--output_path={int8}", "--calibration_videos=4",
                                 f"--dump_calibration={tmp_path / 'calib'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("calibration: 4 training videos (the first 4 in a fixed-seed order), ")
               for line in lines)
    assert any(line.startswith("  scales layer4 ") for line in lines)
    agree = next(line for line in lines if line.startswith("FP32 vs INT8 on the "))
    assert "top-1 agreement " in agree and "max |logit diff| " in agree
    from src.weights.model_file import read_record

    record = read_record(int8)
    assert record.precision == "int8" and record.int8["videos"] == 4
    bins = sorted((tmp_path / "calib" / "x").glob("*.bin"))
    assert len(bins) == record.int8["clips"]
    assert np.fromfile(bins[0], np.float32).size == 3 * 4 * 32 * 32  # one [1, 3, T, H, W] clip
    assert not list(tmp_path.glob("*.tmp*"))  # written under a temporary name, renamed

    shown = {}
    for name, model in (("fp32", result), ("int8", int8)):
        assert eval_script.main(data + [f"--inference_ckpt_path={model}", f"--result_path={tmp_path / name}"]) == 0
        shown[name] = capsys.readouterr()
        out = shown[name].out.strip().splitlines()
        assert out[-3].startswith("clip: ") and "top-1: " in out[-3] and "top-5: " in out[-3]
    fp32 = _clip_predictions(tmp_path / "fp32" / "synthetic_eval_clips.json")
    int8_pred = _clip_predictions(tmp_path / "int8" / "synthetic_eval_clips.json")
    assert any(fp32[k][1] != int8_pred[k][1] for k in fp32)  # the INT8 network ran, not the FP32 one
    agreement = np.mean([fp32[k][0] == int8_pred[k][0] for k in fp32])
    print(f"top-1 agreement FP32 vs INT8 over {len(fp32)} evaluated clips: {100 * agreement:.1f}%")
    assert agreement >= 0.75


def _tampered(src, dst, change):
    import mindspore as ms

    entries = ms.load_checkpoint(str(src))
    record = json.loads(entries.pop("model_settings"))
    change(record)
    params = [{"name": k, "data": v} for k, v in entries.items() if not isinstance(v, str)]
    ms.save_checkpoint(params, str(dst), append_dict={"model_settings": json.dumps(record),
                                                      "architecture": entries["architecture"]})
    return dst


def test_int8_errors(trained, tmp_path, capsys):
    result, data = trained
    int8 = tmp_path / "int8.ckpt"
    assert quantize.main(data + [f"--ckpt_file={result}", f"--output_path={int8}", "--calibration_videos=1"]) == 0
    capsys.readouterr()

    def negative(record):
        record["int8"]["activations"]["stem.0"][1] = -0.5

    bad = _tampered(int8, tmp_path / "bad.ckpt", negative)
    assert eval_script.main(data + [f"--inference_ckpt_path={bad}", f"--result_path={tmp_path / 'e'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "int8 activation stem.0 scale -0.5 is not a finite number" in err[-1]
    assert "Traceback" not in "\n".join(err)

    assert quantize.main(data + [f"--ckpt_file={int8}", f"--output_path={tmp_path / 'again.ckpt'}"]) == 2
    assert "already an INT8 model file" in capsys.readouterr().err
    assert quantize.main(data + [f"--ckpt_file={result}"]) == 2
    assert "--output_path is required" in capsys.readouterr().err
    from src.errors import UserError
    from src.inference.predictors import checkpoint_network
    from src.weights.model_file import read_record

    with pytest.raises(UserError, match="is an INT8 model file .* pass the FP32 checkpoint"):
        checkpoint_network(read_record(int8).spec(), int8)
    from src.models.factory import build_model
    from src.weights.checkpoint import load_strict

    with pytest.raises(UserError, match="is an INT8 model file .* pass the FP32 checkpoint"):  # explain.py's load
        load_strict(build_model(read_record(int8).spec()), int8)


def test_features_of_an_int8_file(trained, tmp_path, capsys):
    import extract_features

    result, data = trained
    int8 = tmp_path / "int8.ckpt"
    assert quantize.main(data + [f"--ckpt_file={result}", f"--output_path={int8}", "--calibration_videos=1"]) == 0
    assert extract_features.main(data + [f"--ckpt_file={int8}", f"--result_path={tmp_path / 'f'}"]) == 0
    features = np.load(tmp_path / "f" / "synthetic_validation_features.npy")
    assert features.shape[0] == 8 and np.isfinite(features).all()
