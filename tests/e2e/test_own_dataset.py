"""Issue 23, as a new user would: a 4-class dataset under its own name, trained with the original's
ucf101_config.yaml and no pretrained weights, then eval.py, export.py and eval_onnx.py given only the model
file and the data: each prints exactly the in-training best line."""
import json

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import eval_onnx as eval_onnx_script
import export as export_script
import predict as predict_script
import train as train_script
from src.data.list_annotations import generate_from_lists
from src.data.synthetic import CLASSES, generate

pytestmark = pytest.mark.slow
# the network and clips are made small on the command line; everything else is ucf101_config.yaml's
SMALL = ["--model_depth=10", "--widen_factor=0.125", "--sample_size=32", "--sample_duration=4",
         "--inference_stride=4", "--eval_batch_size=4", "--num_workers=1"]


@pytest.fixture(scope="module")
def mydata(tmp_path_factory):
    root = tmp_path_factory.mktemp("mydata")
    generate(root, videos_per_class=4, test_videos_per_class=2, frames=8, size=40, seed=0, n_jobs=1, progress=False)
    videos = root / "videos"
    names = [name for name, _, _ in CLASSES[:4]]
    lists = {"train": [], "val": []}
    for i, name in enumerate(names):
        files = sorted((videos / name).glob("*.avi"))
        lists["train"] += [f"{f.relative_to(videos)} {i}" for f in files[:4]]
        lists["val"] += [f"{f.relative_to(videos)} {i}" for f in files[4:]]
    for kind, lines in lists.items():
        (root / f"{kind}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    assert generate_from_lists(root / "train.txt", root / "val.txt", videos, root / "mydata.json",
                               root / "classes.txt", n_jobs=1) == 0
    return {"videos": videos, "json": root / "mydata.json", "names": names, "root": root}


def test_own_dataset_from_scratch_then_deploy_with_only_the_model(mydata, tmp_path, capsys):
    data = [f"--video_path={mydata['videos']}", f"--annotation_path={mydata['json']}"]
    run = tmp_path / "run"
    assert train_script.main(["--dataset=mydata", *data, f"--result_path={run}", *SMALL, "--batch_size=4",
                              "--n_epochs=2", "--warmup_epochs=0", "--eval_in_training=True",
                              "--device_target=CPU"]) == 0
    said = capsys.readouterr()
    assert "start_ft=conv1: no pretrained weights, so every layer trains" in said.out
    assert "n_classes=4: the classes of" in said.err and "training mydata:" in said.out
    best = json.loads((run / "best_metrics.json").read_text())
    ckpt = ms.load_checkpoint(str(run / "best.ckpt"))
    assert ckpt["fc.weight"].shape[0] == 4
    latest = ms.load_checkpoint(str(sorted(run.glob("resnet3d-mydata-2_*.ckpt"))[-1]))
    assert np.abs(latest["accum.conv1.weight"].asnumpy()).max() > 0, "conv1 trains"

    # only the model file and the data: the model's settings replace ucf101_config.yaml's
    assert eval_script.main([f"--inference_ckpt_path={run / 'best.ckpt'}", *data,
                             f"--result_path={tmp_path / 'eval'}"]) == 0
    assert best["line"] in capsys.readouterr().out.splitlines()
    onnx = tmp_path / "mymodel"
    assert export_script.main([f"--ckpt_file={run / 'best.ckpt'}", "--file_format=ONNX",
                               f"--file_name={onnx}"]) == 0
    capsys.readouterr()
    assert eval_onnx_script.main([f"--onnx_path={onnx}.onnx", *data, f"--result_path={tmp_path / 'onnx'}"]) == 0
    assert best["line"] in capsys.readouterr().out.splitlines()
    video = sorted((mydata["videos"] / mydata["names"][2]).glob("*.avi"))[-1]
    assert predict_script.main([f"--video={video}", f"--onnx_path={onnx}.onnx"]) == 0
    printed = capsys.readouterr().out
    top = printed[printed.index(f"{video}:"):].splitlines()[1]  # the first of the top-5 lines
    assert any(name in top for name in mydata["names"]), top  # class names came with the model


def test_a_contradicting_option_is_one_error_naming_both(mydata, tmp_path, capsys):
    data = [f"--video_path={mydata['videos']}", f"--annotation_path={mydata['json']}"]
    run = tmp_path / "run"
    assert train_script.main(["--dataset=mydata", *data, f"--result_path={run}", *SMALL, "--batch_size=4",
                              "--n_epochs=1", "--warmup_epochs=0", "--device_target=CPU"]) == 0
    capsys.readouterr()
    ckpt = sorted(run.glob("resnet3d-mydata-1_*.ckpt"))[-1]
    assert eval_script.main([f"--inference_ckpt_path={ckpt}", *data, "--sample_size=112"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sample_size=112 but the model has 32" in err[0], err
    assert train_script.main(["--dataset=mydata", *data, f"--result_path={tmp_path / 'r2'}", *SMALL,
                              "--n_classes=101", "--device_target=CPU"]) == 2
    err = capsys.readouterr().err
    assert "--n_classes=101 is larger than the 4 classes of" in err
