"""explain.py's logic: Grad-CAM (Selvaraju et al., 2017) for the 3D networks of every family, over one video.

The network is cut after one stage (:class:`StageSplit`: ``conv1``, the stem's output, or ``layer1`` ...
``layer4``); MindSpore differentiates the rest (PyNative) to get d score_c / dA for the stage's activation A.
The map is ReLU(sum_k w_k A_k) with w_k = mean over (t, h, w) of d score_c / dA_k, upsampled trilinearly to
the clip's T x H x W and divided by its peak over the whole video (values 0..1).

The clips are evaluation's (src.deploy.predict.clip_views of the run's ClipSpec: the same windows and
preprocessing as predict.py), one centre crop per window; the predicted class is predict.py's (mean softmax over
all of the video's views).
Outputs, written atomically: the volume (.npy, the windows' frames in order x H x W), an overlay video (.mp4,
the heat map blended on the clip's frames) and a PNG strip of key frames (frames above, overlays below).
"""
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import mindspore as ms
import numpy as np

from src.atomic import atomic_output
from src.data.presets import ClipSpec
from src.data.spatial import MEAN, STD
from src.data.synthetic import write_video
from src.deploy.predict import clip_views, predict_clips, view_batches
from src.deploy.timeline import video_fps
from src.inference.predictors import mindspore_predictor
from src.errors import UserError

log = logging.getLogger("resnet3d")

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")  # where the network can be cut, in forward order
KEY_FRAMES = 8  # frames in the PNG strip
TILE = 128  # the strip's tiles are scaled up (nearest) to at least this many pixels


class StageSplit:
    """A network of any family cut after ``stage``: ``features(clips)`` -> the stage's activation A,
    ``head(A)`` -> logits; ``head(features(x))`` is the network's own forward. The stem is its (conv, bn)
    pairs, each followed by the network's ReLU (``stem_pairs``: ResNet's conv1, R(2+1)D's conv1_s / conv1_t,
    torchvision's stem); the max pool (unless ``no_max_pool``) opens layer1."""

    def __init__(self, net, stage="layer4"):
        if stage not in STAGES:
            raise UserError(f"--cam_layer={stage} is not one of {', '.join(STAGES)}")
        self.net, self.stage, self.cut = net, stage, STAGES.index(stage) + 1

    def _stem(self, x):
        for conv, bn in self.net.stem_pairs():
            x = self.net.relu(bn(conv(x)))
        return x

    def _layer1(self, x):
        return self.net.layer1(x if self.net.no_max_pool else self.net.maxpool(x))

    def _steps(self):
        net = self.net
        return (self._stem, self._layer1, net.layer2, net.layer3, net.layer4)

    def features(self, x):
        for step in self._steps()[:self.cut]:
            x = step(x)
        return x

    def head(self, activation):
        for step in self._steps()[self.cut:]:
            activation = step(activation)
        return self.net.fc(activation.mean(axis=(2, 3, 4)))


def stage_gradients(split, clips, class_index):
    """(A, dscore/dA, logits) as NumPy for float32 clips [b, 3, T, H, W]: A and its gradient [b, K, t, h, w],
    logits [b, n_classes]; the score is the logit of ``class_index``. The clips of a batch are independent
    (BatchNorm in inference mode), so the gradient of the sum of their scores is each clip's own."""
    split.net.set_train(False)
    activation = split.features(ms.Tensor(np.ascontiguousarray(clips, np.float32)))

    def score(a):
        logits = split.head(a)
        return logits[:, class_index].sum(), logits

    (_, logits), gradient = ms.value_and_grad(score, grad_position=0, has_aux=True)(activation)
    return activation.asnumpy(), gradient.asnumpy(), logits.asnumpy()


def grad_cam(activation, gradient):
    """ReLU(sum_k w_k A_k), w_k = mean_{t,h,w} dY/dA_k: [b, K, t, h, w] x 2 -> [b, t, h, w] (not normalised)."""
    weights = gradient.mean(axis=(2, 3, 4))
    return np.maximum(np.einsum("bk,bkthw->bthw", weights, activation), 0.0)


def _resize_axis(volume, axis, size):
    """Linear interpolation along ``axis`` to ``size`` samples, pixel centres aligned (align_corners=False,
    as torch's trilinear interpolate)."""
    n = volume.shape[axis]
    if n == size:
        return volume
    position = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * volume.ndim
    shape[axis] = size
    weight = (position - low).reshape(shape)
    return np.take(volume, low, axis) * (1 - weight) + np.take(volume, high, axis) * weight


def resize_volume(volume, shape):
    """Trilinear resize of the trailing three axes of ``volume`` to ``shape`` (T, H, W)."""
    offset = volume.ndim - 3
    for axis, size in enumerate(shape):
        volume = _resize_axis(volume, offset + axis, size)
    return volume.astype(np.float32)


def clip_cams(split, clips, class_index):
    """Grad-CAM of ``class_index`` for each clip [b, 3, T, H, W]: [b, T, H, W], each divided by its own peak
    (0..1; all 0 where nothing speaks for the class)."""
    maps = resize_volume(grad_cam(*stage_gradients(split, clips, class_index)[:2]), clips.shape[2:])
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


def clip_frames(clip, mean=MEAN, std=STD):
    """The uint8 BGR frames [T, H, W, 3] a clip [3, T, H, W] normalised by ``mean`` / ``std`` was made from (the
    inverse of src.data.spatial.normalize_clip, rounded)."""
    rgb = clip.transpose(1, 2, 3, 0) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return np.clip(np.rint(rgb[..., ::-1] * 255), 0, 255).astype(np.uint8)


def class_index(name, names, n_classes):
    """The index of class ``name`` (a name of ``names``, else a number below n_classes); None for ''."""
    if not name:
        return None
    if names and name in names:
        return names.index(name)
    if name.isdigit() and int(name) < n_classes:
        return int(name)
    known = (", ".join(names[:12]) + (", ..." if len(names) > 12 else "")) if names else f"0 ... {n_classes - 1}"
    raise UserError(f"--class_name={name} is not a class of the model ({known}): pass one of its classes "
                    f"(--labels names them)")


@dataclass
class Explanation:
    """What explain_video found: the video's prediction, the class explained and the raw maps per window."""
    scores: np.ndarray        # [n_classes]: predict.py's video score (mean softmax over its views)
    class_index: int
    cams: np.ndarray          # [n_windows, t, h, w]: the stage's Grad-CAM per window, not normalised
    stage_shape: tuple        # (K, t, h, w) of the stage's activation
    n_frames: int             # of the video
    windows: list             # frame numbers of each window
    spec: ClipSpec            # the clips the maps were made of: one centre crop per window


def explain_video(net, video, spec: ClipSpec, batch, stage, chosen=None):
    """Grad-CAM of class ``chosen`` (None: the predicted one) at ``stage`` for every window (centre crop) of
    ``video``, its clips made by ``spec`` (the config's data and evaluation keys), ``batch`` at a time."""
    scores, n_frames, _ = predict_clips(mindspore_predictor(net), video, spec, batch)
    index = int(np.argmax(scores)) if chosen is None else chosen
    split = StageSplit(net, stage)
    spec = replace(spec, test_crops=1)
    source, views = clip_views(video, spec)
    cams, shape = [], None
    for clips in view_batches(source, views, spec, batch):
        activation, gradient, _ = stage_gradients(split, clips, index)
        cams.append(grad_cam(activation, gradient))
        shape = activation.shape[1:]
    cams = np.concatenate(cams)
    if shape[2:] == (1, 1):
        log.warning("%s is 1x1 at %dx%d clips: the map has no spatial extent, only one value per time step; "
                    "choose an earlier --cam_layer (e.g. %s) to see where", stage, spec.sample_size,
                    spec.sample_size, STAGES[max(0, STAGES.index(stage) - 1)])
    if not cams.any():
        log.warning("nothing at %s speaks for class %d (its Grad-CAM is 0 everywhere)", stage, index)
    return Explanation(scores, index, cams, shape, n_frames, [v[0] for v in views], spec)


def output_paths(result_path, video, stage):
    """(.npy, .mp4, .png) in ``result_path``, named after the video and the stage."""
    video = Path(video)
    stem = f"{video.name if video.is_dir() else video.stem}_{stage}_cam"  # a frame folder's name, a file's stem
    folder = Path(result_path)
    return folder / f"{stem}.npy", folder / f"{stem}.mp4", folder / f"{stem}.png"


def _overlay(frames, cam):
    """The heat map (JET) of ``cam`` [T, H, W] blended half and half on BGR ``frames`` [T, H, W, 3]."""
    heat = [cv2.applyColorMap(np.rint(c * 255).astype(np.uint8), cv2.COLORMAP_JET) for c in cam]
    return np.stack([cv2.addWeighted(f, 0.5, h, 0.5, 0) for f, h in zip(frames, heat)])


def _window_results(explanation, video, batch):
    """(frame numbers, BGR frames, normalised map [T, H, W]) per window, decoded again ``batch`` at a time."""
    spec = explanation.spec
    source, views = clip_views(video, spec)
    peak = float(explanation.cams.max())
    i = 0
    for clips in view_batches(source, views, spec, batch):
        maps = resize_volume(explanation.cams[i:i + len(clips)], clips.shape[2:])
        for clip, cam in zip(clips, maps):
            cam = cam / peak if peak > 0 else cam
            yield views[i][0], clip_frames(clip, spec.mean, spec.std), cam.astype(np.float32)
            i += 1


def write_outputs(explanation, video, paths, batch, fps=0.0):
    """The volume, the overlay video and the key-frame strip at ``paths``, each written atomically; the
    volume is filled window by window (a memory map), so a long video never sits in memory whole; ``batch``
    clips are decoded at a time; ``fps``: the overlay's frames per second (0: the video's). Returns the
    number of key frames."""
    npy, mp4, png = paths
    windows, spec = explanation.windows, explanation.spec
    size, length = spec.sample_size, len(windows[0])
    total = len(windows) * length
    keys = set(np.linspace(0, total - 1, min(KEY_FRAMES, total)).round().astype(int).tolist())
    strip = []

    def overlays(volume):
        for w, (numbers, frames, cam) in enumerate(_window_results(explanation, video, batch)):
            volume[w * length:(w + 1) * length] = cam
            blended = _overlay(frames, cam)
            for t in range(length):
                if w * length + t in keys and numbers[t] not in [n for n, _, _ in strip]:  # not a loop-pad again
                    strip.append((numbers[t], frames[t], blended[t]))
                yield blended[t]

    with atomic_output(npy) as tmp_npy, atomic_output(mp4) as tmp_mp4:
        volume = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float32, shape=(total, size, size))
        write_video(tmp_mp4, overlays(volume), "mp4v", video_fps(video, fps) / spec.sample_t_stride)
        volume.flush()
        del volume
    write_strip(png, strip)
    return len(strip)


def write_strip(path, strip):
    """A PNG of key frames: the frames above, their overlays below, each tile labelled with its frame number."""
    scale = max(1, -(-TILE // strip[0][1].shape[0]))
    columns = []
    for number, frame, blended in strip:
        tiles = [cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for img in (frame, blended)]
        cv2.putText(tiles[0], f"#{number}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        columns.append(np.concatenate(tiles, axis=0))
    image = np.concatenate(columns, axis=1)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise UserError(f"OpenCV cannot write the PNG {path}")
    return Path(path)
