"""Bad inputs and hostile folders for train.py / eval.py / export.py / eval_onnx.py in this process: non-finite,
corrupted and truncated checkpoints, mismatching classes or channels, empty and undecodable frames, a
read-only result folder. Each stops with one `error:` line (the output under test). (Faults injected into
real training processes are in tests/e2e/test_fault_recovery.py.)"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import mindspore as ms
import pytest

import eval as eval_script
import export
from tests.helpers.tiny import TINY_RUN_OPTIONS, make_tiny_checkpoint, tiny_options


def test_non_finite_checkpoints_are_refused_by_eval_export_and_predict(tiny_dataset, tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "nan.ckpt")
    params = ms.load_checkpoint(str(ckpt))
    params["layer1.0.conv1.weight"].set_data(params["layer1.0.conv1.weight"] * float("nan"))
    ms.save_checkpoint(list(params.values()), str(ckpt))
    data = [f"--video_path={tiny_dataset['video_path']}", f"--annotation_path={tiny_dataset['annotation_path']}"]
    assert eval_script.main(TINY_RUN_OPTIONS + data + [f"--inference_ckpt_path={ckpt}",
                                                f"--result_path={tmp_path / 'e'}"]) == 2
    assert "holds non-finite values (NaN/inf) in 1 tensors (layer1.0.conv1.weight)" in capsys.readouterr().err
    assert export.main(tiny_options() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={tmp_path / 'm'}"]) == 2
    assert "non-finite" in capsys.readouterr().err and not list(tmp_path.glob("m*"))


def test_corrupted_and_truncated_checkpoints_are_errors_that_say_so(tiny_dataset, tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "good.ckpt")
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2:len(data) // 2 + 400] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 400])
    flipped, truncated = tmp_path / "flipped.ckpt", tmp_path / "truncated.ckpt"
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(ckpt.read_bytes()[:len(data) // 3])
    args = TINY_RUN_OPTIONS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={tmp_path / 'e'}"]
    for bad in (flipped, truncated):
        assert eval_script.main(args + [f"--inference_ckpt_path={bad}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: checkpoint {bad} is corrupted or truncated") and "interrupted" in err


def test_n_classes_smaller_than_the_annotation_is_an_error(tiny_dataset, tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "five.ckpt", n_classes=5)
    args = TINY_RUN_OPTIONS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={tmp_path / 'e'}",
                        "--n_classes=5"]
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}"]) == 2
    assert "--n_classes=5 is smaller than the 8 classes of" in capsys.readouterr().err
    import train as train_script

    assert train_script.main(args + ["--n_epochs=1", "--batch_size=8"]) == 2
    assert "--n_classes=5 is smaller than the 8 classes of" in capsys.readouterr().err


def test_onnx_export_leaves_folder_permissions_alone(tmp_path):
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o755)
    assert export.main(tiny_options() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={out / 'resnet3d'}"]) == 0
    assert (out / "resnet3d.onnx").is_file() and oct(out.stat().st_mode & 0o777) == oct(0o755)
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if not n.endswith("_export.log")] == ["resnet3d.onnx"] and len(names) == 2


def test_export_and_eval_take_a_result_folder(tiny_dataset, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    make_tiny_checkpoint(folder / "best.ckpt")
    assert export.main(tiny_options() + [f"--ckpt_file={folder}", "--device_target=CPU", "--file_format=MINDIR",
                                      f"--file_name={tmp_path / 'm'}"]) == 0
    assert f"exported {folder / 'best.ckpt'} -> " in capsys.readouterr().out


def test_eval_prints_the_accuracy_before_failing_on_a_read_only_result_path(tiny_dataset, tmp_path,
                                                                            mount_tmpfs, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt")
    target = mount_tmpfs("size=1m")
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    args = TINY_RUN_OPTIONS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={target}",
                        f"--inference_ckpt_path={ckpt}"]
    assert eval_script.main(args) == 2
    captured = capsys.readouterr()
    assert any(line.startswith("clip: ") for line in captured.out.splitlines())
    assert captured.err.strip().splitlines()[-1].startswith("error: ")
    file_as_folder = tmp_path / "a_file"
    file_as_folder.write_text("x")
    assert eval_script.main(args[:-2] + [f"--result_path={file_as_folder}", f"--inference_ckpt_path={ckpt}"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def _copy_dataset(tiny_dataset, tmp_path):
    jpg = tmp_path / "jpg"
    shutil.copytree(tiny_dataset["video_path"], jpg)
    return jpg


def _run_args(tiny_dataset, jpg, result, *extra):
    return TINY_RUN_OPTIONS + [f"--video_path={jpg}", f"--annotation_path={tiny_dataset['annotation_path']}",
                        f"--result_path={result}", *extra]


def test_a_zero_byte_frame_is_one_error_line_in_training(tiny_dataset, tmp_path, capsys):
    import train as train_script

    jpg = _copy_dataset(tiny_dataset, tmp_path)
    for frame in jpg.glob("*/*/image_0000[1-8].jpg"):
        frame.write_bytes(b"")
    assert train_script.main(_run_args(tiny_dataset, jpg, tmp_path / "r", "--n_epochs=1", "--batch_size=8",
                                       "--num_workers=1")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: frame ") and "is empty (0 bytes)" in err, err


def test_a_corrupt_validation_frame_keeps_the_epoch_checkpoint(tiny_dataset, tmp_path, capsys):
    import json as json_module

    import train as train_script

    jpg = _copy_dataset(tiny_dataset, tmp_path)
    database = json_module.loads(Path(tiny_dataset["annotation_path"]).read_text())["database"]
    video, value = next((v, e) for v, e in database.items() if e["subset"] == "validation")
    (jpg / value["annotations"]["label"] / video / "image_00002.jpg").write_bytes(b"not a jpeg at all")
    result = tmp_path / "r"
    assert train_script.main(_run_args(tiny_dataset, jpg, result, "--n_epochs=2", "--batch_size=8",
                                       "--eval_in_training=True", "--num_workers=1")) == 2
    assert "cannot be decoded" in capsys.readouterr().err
    assert (result / "resnet3d-synthetic-1_3.ckpt").is_file()  # the epoch's training is kept


def test_input_channels_that_do_not_match_the_data(tiny_dataset, tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt", n_input_channels=1)
    args = _run_args(tiny_dataset, tiny_dataset["video_path"], tmp_path / "e", "--n_input_channels=1",
                     f"--inference_ckpt_path={ckpt}")
    assert eval_script.main(args) == 2
    assert "--n_input_channels=1 does not match the data" in capsys.readouterr().err


def test_an_onnx_model_for_another_clip_size_is_refused(tiny_dataset, tmp_path, capsys):
    import eval_onnx

    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt")
    assert export.main(tiny_options() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={tmp_path / 'm'}"]) == 0
    capsys.readouterr()
    args = _run_args(tiny_dataset, tiny_dataset["video_path"], tmp_path / "e", f"--onnx_path={tmp_path / 'm.onnx'}",
                     "--sample_size=40")
    assert eval_onnx.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    # the model carries its clip size: a contradicting option is one error naming both
    assert "--sample_size=40 but the model has 32" in err and err.startswith("error: ")


@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
def test_a_link_planted_at_a_log_is_refused_and_its_target_untouched(tiny_dataset, tmp_path, capsys, plant):
    """<result>/<dataset>_eval.log and train_<dataset>.log are opened without following a link: a link someone
    planted there is one error naming it, before anything is written, and the file it points to is unchanged."""
    import train as train_script

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    result = tmp_path / "r"
    result.mkdir()
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt")
    runs = [(eval_script.main, "synthetic_eval.log", [f"--inference_ckpt_path={ckpt}"]),
            (train_script.main, "train_synthetic.log", ["--n_epochs=1", "--batch_size=8"])]
    for main, name, extra in runs:
        log = result / name
        log.symlink_to(victim) if plant == "symlink" else os.link(victim, log)
        assert main(_run_args(tiny_dataset, tiny_dataset["video_path"], result, *extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        what = f"is a symbolic link (to {victim})" if plant == "symlink" else "has another name (a hard link)"
        assert err[-1].startswith(f"error: the log {log} {what}"), err[-3:]
        assert victim.read_text() == "precious\n" and not list(result.glob("*.ckpt"))
        log.unlink()


def test_saving_reports_a_full_disk_as_a_write_error_and_anything_else_as_what_it_is(tmp_path, mount_tmpfs):
    import mindspore as ms
    import numpy as np

    from src.errors import UserError
    from src.weights.checkpoint import save_checkpoint

    params = [{"name": "w", "data": ms.Tensor(np.zeros(100_000, np.float32))}]
    target = mount_tmpfs("size=64k")
    with pytest.raises(UserError) as full:
        save_checkpoint(params, target / "x.ckpt")
    assert str(full.value).startswith(f"cannot write {target / 'x.ckpt'} (No space left on device): check free space")
    assert list(target.iterdir()) == []
    with pytest.raises(UserError) as bad:  # MindSpore's TypeError: not the disk's fault
        save_checkpoint(params, tmp_path / "other" / "y.ckpt", append_dict={"extra": [1, 2]})
    assert str(bad.value).startswith(f"cannot save {tmp_path / 'other' / 'y.ckpt'}: MindSpore could not read the "
                                     f"values to save (For 'save_checkpoint'") and "free space" not in str(bad.value)
    assert list((tmp_path / "other").iterdir()) == []


def _four_class_annotation(tiny_dataset, folder):
    """The tiny annotation with its first 4 classes only: another dataset than the 8-class one."""
    data = json.loads(Path(tiny_dataset["annotation_path"]).read_text())
    data["labels"] = data["labels"][:4]
    data["database"] = {v: e for v, e in data["database"].items()
                        if e.get("annotations", {}).get("label") in data["labels"]}
    path = folder / "four_classes.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def four_class_run(tiny_dataset, tmp_path_factory):
    """A finished 1-epoch training run on 4 classes: its options and its checkpoint."""
    import train as train_script

    root = tmp_path_factory.mktemp("four_classes")
    args = _run_args(tiny_dataset, tiny_dataset["video_path"], root / "run", "--n_epochs=1", "--batch_size=4",
                     "--n_classes=4")
    args[args.index(f"--annotation_path={tiny_dataset['annotation_path']}")] = (
        f"--annotation_path={_four_class_annotation(tiny_dataset, root)}")
    assert train_script.main(args) == 0
    ckpt, = (root / "run").glob("resnet3d-synthetic-1_*.ckpt")
    return {"args": args, "result": root / "run", "ckpt": ckpt}


def test_resuming_into_a_network_with_another_depth_names_both_and_the_fix_works(four_class_run, capsys):
    import train as train_script

    run = four_class_run
    assert train_script.main(run["args"] + ["--resume=auto", "--model_depth=18"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: --resume: {run['ckpt']} holds another network than this run builds (checkpoint "
                          f"vs this run: depth 10 vs 18)"), err
    assert "resume with the options it was trained with (--model_depth=10)" in err and "--result_path" in err
    assert train_script.main(run["args"] + ["--resume=auto", "--model_depth=10"]) == 0  # the fix it names


def test_resuming_into_a_run_with_other_classes_names_them_and_the_fix_works(four_class_run, tiny_dataset, tmp_path,
                                                                             capsys):
    import train as train_script

    run = four_class_run
    eight = _run_args(tiny_dataset, tiny_dataset["video_path"], run["result"], "--n_epochs=1", "--batch_size=4")
    assert train_script.main(eight + ["--resume=auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: --resume: {run['ckpt']} holds another network than this run builds (checkpoint "
                          f"vs this run: classes 4 vs 8)"), err
    assert f"another --result_path (to start from these weights, add --pretrain_path={run['ckpt']}" in err
    fixed = _run_args(tiny_dataset, tiny_dataset["video_path"], tmp_path / "new", "--n_epochs=1", "--batch_size=4",
                      f"--pretrain_path={run['ckpt']}")
    assert train_script.main(fixed) == 0  # the fix it names
    assert "fc replaced: pretrained head has 4 classes, model has 8" in capsys.readouterr().err
