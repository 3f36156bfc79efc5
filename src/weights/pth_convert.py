"""Convert an upstream kenshohara/3D-ResNets-PyTorch ``.pth`` into a MindSpore ``.ckpt``.

torch is imported here only (reading .pth files); training and inference never need it.
"""
import logging
from pathlib import Path

import numpy as np

from src.errors import UserError
from src.weights.naming import infer_architecture, rename_state_dict

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
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path} holds no state_dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if hasattr(v, "detach")}
    if len(tensors) != len(obj):
        others = [k for k in obj if k not in tensors]
        raise UserError(f"{path}: entries that are not tensors: {', '.join(others[:8])}")
    return {k: v.detach().cpu().numpy() for k, v in tensors.items()}


def convert_state_dict(state, model_depth=None, resnet_shortcut=None, conv1_t_stride=1, no_max_pool=False):
    """Rename an upstream state dict to ours and check it against the model it describes.

    Returns (dict name -> float32 array, Architecture). Unknown, missing and mis-shaped keys are errors.
    """
    from src.models.resnet3d import ModelSpec, build_model
    from src.weights.checkpoint import compare_params, network_shapes

    renamed, unknown = rename_state_dict(state)
    if unknown:
        raise UserError(f"{len(unknown)} keys have no rename rule: {', '.join(sorted(unknown)[:8])}")
    arch = infer_architecture({k: v.shape for k, v in renamed.items()}, model_depth, resnet_shortcut)
    net = build_model(ModelSpec(model_depth=arch.model_depth, resnet_shortcut=arch.resnet_shortcut,
                                n_classes=arch.n_classes, widen_factor=arch.widen_factor,
                                conv1_t_size=arch.conv1_t_size, conv1_t_stride=conv1_t_stride,
                                no_max_pool=no_max_pool, n_input_channels=arch.n_input_channels))
    expected = network_shapes(net)
    found = compare_params(expected, renamed)
    if any(found):
        parts = [f"{name} {len(keys)}: {', '.join(sorted(keys)[:6])}"
                 for name, keys in zip(("missing", "unexpected", "shape-mismatched"), found) if keys]
        raise UserError(f"the tensors do not form a {arch.describe()}: " + "; ".join(parts)
                        + " (force --model_depth / --resnet_shortcut if the guess is wrong)")
    ordered = {name: np.ascontiguousarray(renamed[name], dtype=np.float32) for name in expected}
    return ordered, arch


def convert_pth(pth_path, ckpt_path, model_depth=None, resnet_shortcut=None):
    """Read, convert, verify and atomically write. Returns (Architecture, number of tensors)."""
    import mindspore as ms

    from src.weights.checkpoint import save_checkpoint

    params, arch = convert_state_dict(read_pth(pth_path), model_depth, resnet_shortcut)
    save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], ckpt_path)
    return arch, len(params)
