"""explain.py and Grad-CAM: after a short real training on the demo generator's videos (only the moving object
tells the classes apart) the map's mass lies on the object; every family gives a map; the command writes the
volume, the overlay video and the key-frame strip, and a bad --cam_layer or --class_name is one error line."""
import cv2
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

import explain
from src.config import load_config
from src.data import synthetic
from src.data.spatial import normalize_clip
from src.deploy.cam import StageSplit, clip_cams
from src.models.factory import ModelSpec, build_model
from src.runtime import resolve_conv_impl
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

# MoveLeft / MoveRight, 16 frames rendered, every 4th kept (the object moves 6-12 px a frame); 64x64 without the
# max pool, so that layer3 is 8x8 and layer4 4x4 (at 32x32 with the pool layer4 is 1x1)
LOCALISE = {"classes": (0, 1), "render": 16, "stride": 4, "size": 64, "train_videos": 128, "test_videos": 16,
            "steps": 100, "batch": 16, "lr": 1e-3}


def object_masks(class_index, video_index, seed, frames, size):
    """The object's alpha [frames, size, size] in synthetic.render_video's video: the same draws from the same
    generator, the mask warped as the texture is."""
    rng = np.random.default_rng([seed, class_index, video_index])
    _, kind, direction = synthetic.CLASSES[class_index]
    synthetic._background(rng, size)
    _, mask = synthetic._object_canvas(rng)
    half = synthetic.LOCAL / 2
    masks = []
    for cx, cy, angle, radius in synthetic._trajectory(kind, direction, rng, frames, size):
        matrix = cv2.getRotationMatrix2D((half, half), angle, radius / (half - 2))
        matrix[:, 2] += (cx - half, cy - half)
        masks.append(cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR))
    return np.stack(masks)


def _motion_clips(videos, first):
    """Normalised clips [n, 3, 4, size, size], labels and object masks [n, 4, size, size] of ``videos`` videos
    per class from video index ``first`` (rendered in memory: the generator's frames, the pipeline's
    normalisation)."""
    p = LOCALISE
    clips, labels, masks = [], [], []
    for label, ci in enumerate(p["classes"]):
        for vi in range(first, first + videos):
            frames = np.stack(synthetic.render_video(ci, vi, 0, p["render"], p["size"]))[::p["stride"]]
            clips.append(normalize_clip(frames))
            labels.append(label)
            masks.append(object_masks(ci, vi, 0, p["render"], p["size"])[::p["stride"]])
    return np.stack(clips), np.array(labels, np.int32), np.stack(masks)


def _train(net, clips, labels):
    p = LOCALISE
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Adam(net.trainable_params(), learning_rate=p["lr"]))
    step.set_train(True)
    rng = np.random.default_rng(0)
    ms.set_context(mode=ms.GRAPH_MODE)  # ~10x faster steps than PyNative for this tiny network
    for _ in range(p["steps"]):
        batch = rng.choice(len(clips), p["batch"], replace=False)
        step(ms.Tensor(clips[batch]), ms.Tensor(labels[batch]))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net.set_train(False)


def _lift(net, stage, clips, labels, masks):
    """Mean over clips of the map's mass inside the object, divided by the object's mean share of the frame."""
    split = StageSplit(net, stage)
    cams = np.zeros(masks.shape, np.float32)
    for label in np.unique(labels):  # each clip's map of its own class, one batch per class
        cams[labels == label] = clip_cams(split, clips[labels == label], int(label))
    inside = (cams * masks).sum(axis=(1, 2, 3)) / np.maximum(cams.sum(axis=(1, 2, 3)), 1e-9)
    return float(inside.mean() / masks.mean())


@pytest.mark.slow
def test_after_training_the_map_lies_on_the_moving_object():
    """Trained 100 steps (batch 16, Adam 1e-3) on 2 x 128 generated videos (MoveLeft / MoveRight); 32 held-out
    clips, where the object covers 7.7 % of the frames. Measured (2-core CPU, ~15 s, marked slow): accuracy 97 %;
    the share of the map's mass inside the object is 1.99x the object's share at layer3 (8x8) and 1.47x at
    layer4 (4x4), against 0.53x and 0.61x before training (native convolutions instead of the fast op: 2.02x,
    1.47x; other seeds: 2.20x / 1.40x and 1.61x / 1.29x). Asserted: accuracy >= 80 %, lift >= 1.3 at layer3 and
    >= 1.2 at layer4, each at least 0.5 above the untrained network's."""
    p = LOCALISE
    cfg = load_config(tiny_options(n_classes=2, sample_size=p["size"], no_max_pool=True, conv1_t_size=3))
    train_clips, train_labels, _ = _motion_clips(p["train_videos"], p["test_videos"])
    clips, labels, masks = _motion_clips(p["test_videos"], 0)
    ms.set_seed(0)
    net = build_model(cfg.arch, conv_impl=resolve_conv_impl("CPU", None))  # the suite's fast path
    net.set_train(False)
    before = {stage: _lift(net, stage, clips, labels, masks) for stage in ("layer3", "layer4")}
    _train(net, train_clips, train_labels)
    accuracy = float((net(ms.Tensor(clips)).asnumpy().argmax(axis=1) == labels).mean())
    after = {stage: _lift(net, stage, clips, labels, masks) for stage in ("layer3", "layer4")}
    assert accuracy >= 0.8, accuracy
    for stage, least in (("layer3", 1.3), ("layer4", 1.2)):
        assert after[stage] >= least and after[stage] >= before[stage] + 0.5, (stage, before, after)


# family: (depth, options); bottleneck-only families at depth 50, ResNeXt with 4 groups at quarter width
FAMILIES = {"resnet": (10, {}), "resnet2p1d": (10, {}), "preresnet": (10, {}),
            "wideresnet": (50, {"wide_resnet_k": 2}), "resnext": (50, {"resnext_cardinality": 4, "widen_factor": 0.25}),
            "tv_r3d": (10, {}), "tv_mc3": (10, {}), "tv_r2plus1d": (10, {})}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_gives_a_map_of_the_clip_size(family):
    depth, options = FAMILIES[family]
    options = {"widen_factor": 0.125, **options}
    ms.set_seed(0)
    net = build_model(ModelSpec(model=family, model_depth=depth, n_classes=8, **options))  # native: explain.py's
    net.set_train(False)
    clip = np.random.default_rng(0).normal(size=(1, 3, 4, 32, 32)).astype(np.float32)
    logits = net(ms.Tensor(clip)).asnumpy()
    split = StageSplit(net, "layer2")  # the cut network is the network (every cut: tests/unit/test_cam.py)
    np.testing.assert_allclose(split.head(split.features(ms.Tensor(clip))).asnumpy(), logits, rtol=1e-4, atol=1e-5)
    # the stem's map back-propagates through the whole network: the depth-10 families (every kind of stem)
    for stage in ("conv1", "layer4") if depth == 10 else ("layer4",):
        cam = clip_cams(StageSplit(net, stage), clip, int(logits.argmax()))
        assert cam.shape == (1, 4, 32, 32) and cam.dtype == np.float32, stage
        assert np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1, stage
        assert cam.max() in (0.0, 1.0), stage  # divided by its peak


@pytest.fixture(scope="module")
def explain_workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    synthetic.generate(root, videos_per_class=0, test_videos_per_class=1, frames=10, size=40, n_jobs=1,
                       progress=False)
    ckpt = make_tiny_checkpoint(root / "tiny.ckpt")
    video = next((root / "videos" / "MoveLeft").glob("*.avi"))
    return {"ckpt": ckpt, "video": video, "labels": root / "labels" / "classInd.txt"}


def _args(ws, result, *extra):
    return [f"--video={ws['video']}", f"--ckpt_file={ws['ckpt']}", f"--labels={ws['labels']}",
            f"--result_path={result}", "--device_target=CPU", *tiny_options(), *extra]


def test_explain_writes_the_map_the_overlay_and_the_key_frames(explain_workspace, tmp_path, capsys):
    ws, result = explain_workspace, tmp_path / "cam"
    assert explain.main(_args(ws, result)) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].endswith("10 frames, 3 windows of 4") and lines[1].startswith("predicted: ")
    predicted = lines[1].split()[1]
    assert lines[2].startswith(f"Grad-CAM of {predicted} (") and "at layer4: 64 channels of 1x1x1" in lines[2]
    # layer4 of a 32x32 clip is 1x1: said once
    assert len([line for line in captured.err.splitlines() if "no spatial extent" in line]) == 1
    stem = f"{ws['video'].stem}_layer4_cam"
    npy, mp4, png = (result / f"{stem}{suffix}" for suffix in (".npy", ".mp4", ".png"))
    assert lines[3:] == [f"cam volume: 12x32x32 (0..1) -> {npy}", f"overlay video: 12 frames -> {mp4}",
                         f"key frames: 7 -> {png}"]  # 8 picked of 12, one a loop-padded repeat
    volume = np.load(npy)
    assert volume.shape == (12, 32, 32) and volume.dtype == np.float32
    assert volume.min() >= 0 and volume.max() <= 1 and volume.max() > 0
    capture = cv2.VideoCapture(str(mp4))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 12 and frames[0].shape == (32, 32, 3)
    strip = cv2.imread(str(png))
    assert strip.shape == (2 * 128, 7 * 128, 3)
    assert sorted(p.name for p in result.iterdir()) == sorted([npy.name, mp4.name, png.name])  # no temporaries


def test_explain_a_chosen_class_at_another_stage(explain_workspace, tmp_path, capsys):
    ws, result = explain_workspace, tmp_path / "cam"
    assert explain.main(_args(ws, result, "--cam_layer=layer2", "--class_name=MoveRight")) == 0
    captured = capsys.readouterr()
    assert "Grad-CAM of MoveRight (" in captured.out and "at layer2: 16 channels of 1x4x4" in captured.out
    assert "no spatial extent" not in captured.err
    volume = np.load(result / f"{ws['video'].stem}_layer2_cam.npy")
    assert volume.shape == (12, 32, 32) and volume.min() >= 0 and volume.max() <= 1


@pytest.mark.parametrize("option,message", [
    ("--cam_layer=layer5", "--cam_layer: 'layer5' is not one of conv1, layer1, layer2, layer3, layer4"),
    ("--class_name=Jump", "--class_name=Jump is not a class of the model (MoveLeft, MoveRight"),
])
def test_a_bad_layer_or_class_is_one_error_line(explain_workspace, tmp_path, capsys, option, message):
    assert explain.main(_args(explain_workspace, tmp_path / "cam", option)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error:")]) == 1 and message in err[-1]
    assert not (tmp_path / "cam").exists()


def test_an_exported_model_or_no_video_is_one_error_line(explain_workspace, tmp_path, capsys):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not a graph")
    assert explain.main(_args(explain_workspace, tmp_path / "cam", f"--ckpt_file={onnx}")) == 2
    assert "Grad-CAM needs the network's gradients" in capsys.readouterr().err
    assert explain.main([f"--ckpt_file={explain_workspace['ckpt']}"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --video is required: a video file (.avi, .mp4, ...) or a "
                                               "folder of image_00001.jpg frames")
