"""Spatial transforms, done the fast way: one affine warp per frame straight from a DCT-reduced decode.

A crop is described by a *box* ``(left, top, width, height)`` in source-pixel coordinates that is
mapped onto a ``size`` x ``size`` output. "Resize the shorter side, then center crop" and
"random-resized crop" are both boxes, so each frame is decoded (at 1/2, 1/4 ... size when the box
allows it), warped once with bilinear interpolation, and stays uint8 until one vectorised
normalisation of the whole clip. Random parameters are drawn once per clip and applied to every
frame (upstream 3D-ResNets behaviour; the original MindSpore port drew them per frame, which broke
temporal coherence — fixed here).
"""
import math

import cv2
import numpy as np

# the original's normalisation (the configuration's mean / std defaults; a model's record may carry its own)
MEAN = (0.4345, 0.4051, 0.3775)
STD = (0.2768, 0.2713, 0.2737)
JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue


def resized_shape(height, width, size):
    """(width, height) after resizing the shorter side to ``size`` (PIL's truncation of the longer side)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def center_box(height, width, size):
    """Box of "resize shorter side to ``size`` (bilinear), then center crop ``size``" (PIL semantics)."""
    out_w, out_h = resized_shape(height, width, size)
    left, top = int(round((out_w - size) / 2.0)), int(round((out_h - size) / 2.0))
    sx, sy = width / out_w, height / out_h
    return left * sx, top * sy, size * sx, size * sy


def resized_center_box(height, width, size, resize):
    """Box of "resize every frame to ``resize`` = (H, W), then centre crop ``size``" (torchvision's video eval)."""
    out_h, out_w = resize
    left, top = int(round((out_w - size) / 2.0)), int(round((out_h - size) / 2.0))
    sx, sy = width / out_w, height / out_h
    return left * sx, top * sy, size * sx, size * sy


def three_crop_box(height, width, size, index):
    """Crop ``index`` (0, 1, 2) of MMAction2's ThreeCrop after resizing the shorter side to ``size``: crops of
    ``size`` along the longer side at offsets 0, s, 2s with s = (long - size) // 2."""
    out_w, out_h = resized_shape(height, width, size)
    step = (max(out_w, out_h) - size) // 2
    left, top = (index * step, 0) if out_w > out_h else (0, index * step)
    sx, sy = width / out_w, height / out_h
    return left * sx, top * sy, size * sx, size * sy


def random_resized_box(height, width, scale, ratio, rng):
    """Random area fraction in ``scale`` and aspect ratio in ``ratio`` (torchvision's algorithm)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return float(left), float(top), float(w), float(h)
    # fallback: central crop with the aspect ratio clamped into range
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return float((width - w) // 2), float((height - h) // 2), float(w), float(h)


def choose_reduce(box, size):
    """Largest JPEG DCT reduction (8, 4, 2) that still leaves the box at least ``size`` pixels."""
    for factor in (8, 4, 2):
        if box[2] / factor >= size and box[3] / factor >= size:
            return factor
    return 1


def warp_frames(frames, reduce, box, size):
    """Map ``box`` of each (1/``reduce``-decoded) frame onto ``size`` x ``size``; returns uint8 T,H,W,3."""
    left, top, bw, bh = box
    sx, sy = bw / size / reduce, bh / size / reduce
    # output pixel centre x -> source u = left + (x + .5) * bw / size - .5 -> decoded (u + .5) / reduce - .5
    matrix = np.array([[sx, 0.0, (left + 0.5 * bw / size) / reduce - 0.5],
                       [0.0, sy, (top + 0.5 * bh / size) / reduce - 0.5]], np.float64)
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t, frame in enumerate(frames):
        cv2.warpAffine(frame, matrix, (size, size), dst=out[t],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out


def draw_jitter(rng, strength=JITTER):
    """Colour-jitter parameters for one clip: factors and a random order of the four operations."""
    b, c, s, h = strength
    return {"brightness": rng.uniform(1 - b, 1 + b), "contrast": rng.uniform(1 - c, 1 + c),
            "saturation": rng.uniform(1 - s, 1 + s), "hue": rng.uniform(-h, h),
            "order": [int(i) for i in rng.permutation(4)]}


def _gray(rgb):
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def apply_jitter(rgb, params):
    """Jitter a float RGB clip T,H,W,3 in [0, 1] with the same parameters on every frame."""
    for op in params["order"]:
        if op == 0:
            rgb = rgb * params["brightness"]
        elif op == 1:
            mean = _gray(rgb).mean(axis=(1, 2), keepdims=True)[..., None]
            rgb = rgb * params["contrast"] + mean * (1 - params["contrast"])
        elif op == 2:
            rgb = rgb * params["saturation"] + _gray(rgb)[..., None] * (1 - params["saturation"])
        else:
            shifted = []
            for frame in rgb.astype(np.float32):
                hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)  # float input: H in degrees
                hsv[..., 0] = (hsv[..., 0] + params["hue"] * 360.0) % 360.0
                shifted.append(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
            rgb = np.stack(shifted)
        rgb = np.clip(rgb, 0.0, 1.0)
    return rgb.astype(np.float32)


def normalize_clip(clip_bgr, flip=False, jitter=None, mean=MEAN, std=STD):
    """uint8 BGR T,H,W,3 -> float32 RGB C,T,H,W normalised by ``mean`` / ``std`` (the model input contract)."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    rgb = clip_bgr[..., ::-1]
    if flip:
        rgb = rgb[:, :, ::-1]
    if jitter is not None:
        rgb = apply_jitter(rgb.astype(np.float32) / 255.0, jitter)
        out = np.ascontiguousarray(rgb.transpose(3, 0, 1, 2))
        out -= mean.reshape(3, 1, 1, 1)
        out /= std.reshape(3, 1, 1, 1)
        return out
    out = np.ascontiguousarray(rgb.transpose(3, 0, 1, 2)).astype(np.float32)
    out *= (1.0 / (255.0 * std)).reshape(3, 1, 1, 1)
    out -= (mean / std).reshape(3, 1, 1, 1)
    return out


def load_clip(source, numbers, box_fn, size, reduce=True):
    """Decode frames ``numbers`` of ``source`` and crop them to uint8 T,size,size,3 (BGR).

    ``box_fn(height, width)`` returns the crop box for the clip's frame size (drawn once per clip).
    """
    height, width = source.frame_size(numbers[0])
    box = box_fn(height, width)
    frames, factor = source.read(numbers, choose_reduce(box, size) if reduce else 1)
    return warp_frames(frames, factor, box, size)
