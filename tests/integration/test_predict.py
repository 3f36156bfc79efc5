"""predict.py: top-5 of one synthetic video from a checkpoint, ONNX and MINDIR; clear errors."""
import cv2
import mindspore as ms
import numpy as np
import pytest

import export
import predict
from src.config import load_config
from src.data.synthetic import CLASSES, generate
from src.deploy.predict import format_top, read_labels
from src.errors import UserError
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

NAMES = [c[0] for c in CLASSES]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    generate(root, videos_per_class=0, test_videos_per_class=1, frames=10, size=40, n_jobs=1, progress=False)
    ckpt = make_tiny_checkpoint(root / "tiny.ckpt")
    for fmt in ("ONNX", "MINDIR"):
        assert export.main([f"--ckpt_file={ckpt}", f"--file_format={fmt}", "--device_target=CPU",
                            f"--file_name={root / 'tiny'}"] + tiny_options()) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    video = next((root / "videos" / "MoveLeft").glob("*.avi"))
    return {"root": root, "ckpt": ckpt, "video": video, "labels": root / "labels" / "classInd.txt"}


def _top5(out):
    lines = out.strip().splitlines()
    assert "10 frames, 3 windows of 4" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["1.", "2.", "3.", "4.", "5."]
    return [" ".join(r[1:-1]) for r in rows], np.array([float(r[-1]) for r in rows])


def test_predict_checkpoint_onnx_mindir_agree(workspace, capsys):
    """The scores predict.py computes from each model format agree; its printed top-5 shows them."""
    from src.data.presets import ClipSpec
    from src.deploy.predict import make_predictor, predict_clips
    from src.runtime import setup_runtime

    ws = workspace
    common = [f"--video={ws['video']}", f"--labels={ws['labels']}", "--device_target=CPU"] + tiny_options()
    models = {"checkpoint": f"--ckpt_file={ws['ckpt']}", "ONNX": f"--onnx_path={ws['root'] / 'tiny.onnx'}",
              "MINDIR": f"--mindir_path={ws['root'] / 'tiny.mindir'}"}
    kinds = {"checkpoint": "checkpoint", "ONNX": "onnx", "MINDIR": "mindir"}
    scores = {}
    for name, model in models.items():
        cfg = load_config(common + [model], extra=predict.OPTIONS)
        runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision, device_target="CPU",
                                distributed=False)
        path = model.split("=", 1)[1]
        predict_fn = make_predictor(path, kinds[name], runtime, cfg.arch, cfg.data, cfg.device_target)
        spec = ClipSpec.of(cfg.data, cfg.evaluation)
        scores[name], n_frames, n_views = predict_clips(predict_fn, ws["video"], spec, cfg.eval_batch_size)
        assert (n_frames, n_views) == (10, 3), name
    for name in ("ONNX", "MINDIR"):
        np.testing.assert_allclose(scores[name], scores["checkpoint"], atol=2e-5, err_msg=name)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    labels = read_labels(ws["labels"])
    assert set(labels) == set(NAMES)
    # the command prints those scores' top 5 (and takes --onnx, the deprecated spelling of --onnx_path)
    for model, expected in ((models["checkpoint"], scores["checkpoint"]),
                            (f"--onnx={ws['root'] / 'tiny.onnx'}", scores["ONNX"])):
        assert predict.main(common + [model]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert "10 frames, 3 windows of 4" in lines[0] and lines[1:] == format_top(expected, labels)


def test_predict_frame_folder(workspace, tmp_path, capsys):
    from src.data.extract import extract_video

    result = extract_video(workspace["video"], tmp_path / "frames", size=0)
    assert result.status == "done" and result.frames == 10
    assert predict.main([f"--video={tmp_path / 'frames'}", f"--onnx={workspace['root'] / 'tiny.onnx'}",
                         f"--result_path={tmp_path / 'r'}"] + tiny_options()) == 0
    text = capsys.readouterr().out
    names, _ = _top5(text)
    log, = (tmp_path / "r").glob("*_predict.log")  # a --result_path given: the log goes there
    assert set(text.strip().splitlines()) <= set(log.read_text().splitlines())
    assert all(n.startswith("class ") for n in names)  # no --labels: class indices


def test_labels_formats(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 Apply Eye\n2 Bike\n\n")
    assert read_labels(tmp_path / "classInd.txt") == ["Apply Eye", "Bike"]
    (tmp_path / "names.txt").write_text("Run\nJump\n")
    assert read_labels(tmp_path / "names.txt") == ["Run", "Jump"]
    (tmp_path / "a.json").write_text('{"labels": ["x", "y"], "database": {}}')
    assert read_labels(tmp_path / "a.json") == ["x", "y"]
    with pytest.raises(UserError, match="labels list 2 classes but the model outputs 3"):
        format_top(np.array([0.2, 0.5, 0.3]), ["x", "y"])
    assert format_top(np.array([0.2, 0.5, 0.3]), None)[0] == "1. class 1  0.5000"


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.avi", "does not exist"),
    (lambda p: (p / "bad.avi").write_bytes(b"not a video") and p / "bad.avi", "cannot be opened"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no image_*.jpg frames"),
])
def test_unreadable_videos(workspace, tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert predict.main([f"--video={path}", f"--onnx={workspace['root'] / 'tiny.onnx'}"] + tiny_options()) == 2
    assert message in capsys.readouterr().err


def test_predict_needs_one_model_and_a_video(workspace, capsys):
    assert predict.main([f"--onnx={workspace['root'] / 'tiny.onnx'}"] + tiny_options()) == 2
    assert "--video is required" in capsys.readouterr().err
    assert predict.main([f"--video={workspace['video']}"] + tiny_options()) == 2
    assert "exactly one model" in capsys.readouterr().err


def test_predict_wrong_labels_count(workspace, tmp_path, capsys):
    (tmp_path / "two.txt").write_text("a\nb\n")
    assert predict.main([f"--video={workspace['video']}", f"--onnx={workspace['root'] / 'tiny.onnx'}",
                         f"--labels={tmp_path / 'two.txt'}"] + tiny_options()) == 2
    assert "labels list 2 classes" in capsys.readouterr().err


def test_video_windows_match_eval_preprocessing(workspace):
    from src.data.layout import open_video
    from src.data.presets import ClipSpec, eval_clip, eval_windows
    from src.deploy.predict import clip_views, view_batches

    cfg = load_config(tiny_options())
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    source, views = clip_views(workspace["video"], spec)
    clips = np.concatenate(list(view_batches(source, views, spec, 2)))
    windows = eval_windows(len(source), spec)
    assert len(clips) == len(windows) == 3
    np.testing.assert_array_equal(clips[2], eval_clip(open_video(workspace["video"]), windows[2], spec))


def test_timeline_of_a_long_video(workspace, tmp_path, capsys):
    import csv

    from tests.helpers.media import write_noise_video

    video = write_noise_video(tmp_path / "long.avi", n_frames=40)
    out = tmp_path / "t" / "timeline.csv"
    assert predict.main([f"--video={video}", f"--ckpt_file={workspace['ckpt']}", f"--timeline={out}",
                         "--eval_batch_size=3", "--device_target=CPU"] + tiny_options()) == 0
    text = capsys.readouterr().out
    assert "timeline: 10 windows -> " in text and out.with_suffix(".png").is_file()
    log, = out.parent.glob("*_predict.log")  # every printed line, kept beside the timeline
    logged = log.read_text().splitlines()
    assert logged[0].startswith("=== ") and set(text.strip().splitlines()) <= set(logged)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and rows[0]["first_frame"] == "1" and rows[0]["last_frame"] == "4"
    assert rows[9]["start_s"] == f"{36 / 25:.3f}" and rows[9]["end_s"] == f"{40 / 25:.3f}"  # 25 fps file
    assert sum(float(rows[0][f"p{r}"]) for r in range(1, 6)) <= 1.0 + 1e-6


def test_annotated_video_of_a_file(workspace, tmp_path, capsys):
    """--annotate: every input frame, enlarged to a readable size, with the top classes drawn at the top left."""
    from src.deploy.annotate import MIN_SIDE
    from tests.helpers.media import write_noise_video

    video = write_noise_video(tmp_path / "in.avi", n_frames=12, size=(64, 48))
    out = tmp_path / "a" / "annotated.mp4"
    assert predict.main([f"--video={video}", f"--ckpt_file={workspace['ckpt']}", f"--annotate={out}",
                         f"--labels={workspace['labels']}", "--device_target=CPU"] + tiny_options()) == 0
    assert f"annotated video: 12 frames -> {out}" in capsys.readouterr().out
    cap, source = cv2.VideoCapture(str(out)), cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    drawn, frame = cap.read()[1], source.read()[1]
    cap.release(), source.release()
    assert drawn.shape[:2] == (MIN_SIDE, MIN_SIDE * 64 // 48)
    plain = cv2.resize(frame, drawn.shape[1::-1], interpolation=cv2.INTER_LINEAR).astype(float)
    label, rest = slice(0, drawn.shape[0] // 4), slice(drawn.shape[0] // 2, None)
    assert np.abs(drawn[label] - plain[label]).mean() > 40  # the labels and bars
    assert np.abs(drawn[rest] - plain[rest]).mean() < 25  # the picture itself (mp4v's loss only)
    assert not list(out.parent.glob(".*"))  # written atomically: no temporary left
