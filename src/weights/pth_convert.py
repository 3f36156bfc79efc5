"""Convert an upstream kenshohara/3D-ResNets-PyTorch ``.pth``, or a torchvision video ResNet's state dict
(``torchvision.models.video``: r3d_18, mc3_18, r2plus1d_18), into a MindSpore ``.ckpt``.

torch is imported here only (reading .pth files); training and inference never need it.
"""
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from src.errors import UserError
from src.weights.naming import infer_architecture, is_densenet, rename_state_dict, strip_prefixes

log = logging.getLogger("resnet3d")


def _describe_bad_file(path, head):
    """What a file that is not a PyTorch checkpoint looks like, as advice; None if it may be one."""
    stripped = head.lstrip().lower()
    if not head:
        return f"{path} is empty (0 bytes): the download failed; download it again"
    if stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<")):
        return (f"{path} is an HTML/XML page, not a PyTorch checkpoint (a download link that returned a web "
                f"page?); download the .pth file itself")
    if stripped.startswith((b"{", b"[")):
        return f"{path} is a JSON/text file, not a PyTorch checkpoint; download the .pth file itself"
    if head[:1] == b"\n" and not head.startswith(b"PK"):
        return (f"{path} looks like a MindSpore checkpoint already (protobuf), not a .pth: "
                f"use it directly as pretrain_path")
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        return f"{path} is not a PyTorch checkpoint (unknown header {head[:8]!r}); download the .pth file again"
    return None


def read_pth(path):
    """The tensors of a .pth as a dict name -> float32 numpy array (prefixes not yet stripped)."""
    return read_pth_file(path)[0]


def read_pth_file(path):
    """(tensors as read_pth, the file's ``arch`` field or ''). Upstream's releases wrap the state dict in
    {'epoch', 'arch': 'resnext-101', 'state_dict', 'optimizer'}; DenseNet files are refused here."""
    import torch  # only conversion needs torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--pth_path {path} not found")
    with open(path, "rb") as f:
        head = f.read(64)
    problem = _describe_bad_file(path, head)
    if problem:
        raise UserError(problem)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds (zip reader RuntimeError, UnpicklingError, EOFError)
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise UserError(f"{path} holds Python objects besides tensors ({first}); refusing to run code from a "
                            f"downloaded file — re-save it as a plain state_dict") from None
        raise UserError(f"{path} cannot be read as a PyTorch checkpoint ({first}); it is probably truncated: "
                        f"download it again") from None
    arch = str(obj.get("arch", "")) if isinstance(obj, dict) else ""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if arch.startswith("densenet") or (isinstance(obj, dict) and is_densenet(strip_prefixes(obj))):
        raise UserError(f"{path} is a DenseNet ({arch or 'features.* / classifier.* tensors'}), which is not a "
                        f"3D ResNet: this port converts resnet, resnet2p1d, preresnet, wideresnet, resnext and "
                        f"torchvision's r3d, mc3, r2plus1d")
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path} holds no state_dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if hasattr(v, "detach")}
    if len(tensors) != len(obj):
        others = [k for k in obj if k not in tensors]
        raise UserError(f"{path}: entries that are not tensors: {', '.join(others[:8])}")
    return {k: v.detach().cpu().numpy() for k, v in tensors.items()}, arch


def model_spec(arch, **stem):
    """The ModelSpec of an inferred Architecture (``stem``: conv1_t_stride / no_max_pool, not in the tensors)."""
    from src.record import ARCH_KEYS, ModelSpec

    return ModelSpec(**{**{k: getattr(arch, k) for k in ARCH_KEYS}, **stem})


def convert_state_dict(state, model_depth=None, resnet_shortcut=None, conv1_t_stride=1, no_max_pool=False):
    """Rename an upstream state dict to ours and check it against the model it describes.

    Returns (dict name -> float32 array, Architecture). Unknown, missing and mis-shaped keys are errors.
    """
    from src.models.factory import build_model
    from src.weights.checkpoint import compare_params, network_shapes

    renamed, unknown = rename_state_dict(state)
    if unknown:
        raise UserError(f"{len(unknown)} keys have no rename rule: {', '.join(sorted(unknown)[:8])}")
    arch = infer_architecture({k: v.shape for k, v in renamed.items()}, model_depth, resnet_shortcut)
    net = build_model(model_spec(arch, conv1_t_stride=conv1_t_stride, no_max_pool=no_max_pool))
    expected = network_shapes(net)
    found = compare_params(expected, renamed)
    if any(found):
        parts = [f"{name} {len(keys)}: {', '.join(sorted(keys)[:6])}"
                 for name, keys in zip(("missing", "unexpected", "shape-mismatched"), found) if keys]
        raise UserError(f"the tensors do not form a {arch.describe()}: " + "; ".join(parts)
                        + " (force --model_depth / --resnet_shortcut if the guess is wrong)")
    ordered = {name: np.ascontiguousarray(renamed[name], dtype=np.float32) for name in expected}
    return ordered, arch


# the CVPR 2018 release's fixed-size pool, said once per conversion of one of its files
POOL_NOTE = ("note: CVPR 2018 networks end in AvgPool3d((ceil(T/16), ceil(S/32), ceil(S/32))) built for their "
             "training clip (16x112x112; 64 frames for the 64-frame ResNeXt-101 fine-tunes), where it equals our "
             "global average pooling: same logits there; at other clip sizes upstream's fails or averages windows, "
             "ours averages the whole feature map")


# torchvision.models.video's weights: Kinetics-400, 16-frame clips of frames resized to 128x171 then centre-cropped
# to 112x112, normalised with these (its VideoClassification preset); a converted file records them
TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)
# torchvision's video clip: 16 frames, every frame resized to 128x171, centre crop 112, its normalisation
TORCHVISION_CLIP = {"sample_size": 112, "sample_duration": 16, "resize": [128, 171], "mean": list(TORCHVISION_MEAN),
                    "std": list(TORCHVISION_STD)}
TORCHVISION_NAMES = {"tv_r3d": "r3d", "tv_mc3": "mc3", "tv_r2plus1d": "r2plus1d"}


def converted_record(spec):
    """(the record of a converted file of ``spec``, notes to print). What the tensors tell (not the stem's stride
    or max-pool), and for torchvision's networks torchvision's clip and normalisation."""
    from src.record import ARCH_KEYS
    from src.weights.model_file import record_of

    known = tuple(k for k in ARCH_KEYS if k not in ("conv1_t_stride", "no_max_pool"))
    if spec.model not in TORCHVISION_NAMES:
        return record_of(asdict(spec), keys=known), []
    name = f"{TORCHVISION_NAMES[spec.model]}_{spec.model_depth}"
    kinetics = " (Kinetics-400; its class names are not recorded)" if spec.n_classes == 400 else ""
    note = (f"torchvision's {name}{kinetics}: recorded its clip (16 frames, frames resized to 128x171, 112x112 "
            f"centre crops) and normalisation (mean {TORCHVISION_MEAN}, std {TORCHVISION_STD})")
    record = record_of({**asdict(spec), **TORCHVISION_CLIP}, keys=(*known, *TORCHVISION_CLIP))
    return record, [note]


def convert_pth(pth_path, ckpt_path, model_depth=None, resnet_shortcut=None):
    """Read, convert, verify and atomically write (the architecture recorded in the checkpoint).
    Returns (Architecture, number of tensors, notes to print)."""
    import mindspore as ms

    from src.models.families import architecture_name
    from src.weights.checkpoint import ARCHITECTURE_KEY, save_checkpoint
    from src.weights.model_file import KEY

    state, file_arch = read_pth_file(pth_path)
    params, arch = convert_state_dict(state, model_depth, resnet_shortcut)
    notes = [f"the file's arch field: {file_arch}"] if file_arch else []
    # the 2020 release (resnet, resnet2p1d) saved without DataParallel's prefixes, the CVPR 2018 one with them
    cvpr2018 = arch.model in ("preresnet", "wideresnet", "resnext") or (
        arch.model == "resnet" and any(k.startswith("module.") for k in state))
    if cvpr2018:
        notes.append(POOL_NOTE)
    spec = model_spec(arch)
    # eval / export / predict take the architecture (and a torchvision file's clip) from the file
    record, record_notes = converted_record(spec)
    save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], ckpt_path,
                    append_dict={ARCHITECTURE_KEY: architecture_name(spec), KEY: record.to_json()})
    return arch, len(params), notes + record_notes
