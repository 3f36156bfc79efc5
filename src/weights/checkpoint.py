"""Loading MindSpore checkpoints into a network: for fine-tuning, or strictly (eval, export, resume).

Evaluating random weights must be impossible: ``load_strict`` fails on any missing, unexpected or
shape-mismatched parameter. ``load_pretrained`` replaces only ``fc`` (loudly) when class counts differ.
"""
import logging
import os
import re
from pathlib import Path

import mindspore as ms

from src.errors import UserError
from src.weights.naming import infer_architecture

log = logging.getLogger("resnet3d")

# entries a training checkpoint carries besides the network: optimiser and loop state
_TRAINING_STATE = re.compile(r"^(moments|accum|moment1|moment2|stat)\.|^(learning_rate|global_step|momentum|"
                             r"scale_sense|current_iterator_step|last_overflow_iterator_step|epoch_num|"
                             r"step_num|epoch|step|best_.*|train_.*)$")
HEAD = ("fc.weight", "fc.bias")


def _list(keys, limit=8):
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def read_checkpoint(path):
    """All entries of a MindSpore .ckpt as a dict name -> Parameter, with a clear error if unreadable."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise UserError(f"checkpoint {path} not found: check the path (pth_to_ckpt.py converts upstream .pth files)")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes): write or download it again")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") or head[:2] == b"\x80\x02":
        raise UserError(f"{path} is a PyTorch file, not a MindSpore checkpoint: convert it with "
                        f"python pth_to_ckpt.py --pth_path={path} --ckpt_path=<out>.ckpt")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, TypeError) as err:
        raise UserError(f"{path} is not a readable MindSpore checkpoint ({str(err).splitlines()[0][:200]}); "
                        f"is it truncated or another format?") from None


def network_params(params):
    """Only the network's parameters of a checkpoint (drops optimiser / loop state)."""
    return {k: v for k, v in params.items() if not _TRAINING_STATE.search(k)}


def _compare(net, params):
    expected = {p.name: tuple(p.shape) for p in net.get_parameters()}
    got = {k: tuple(v.shape) for k, v in params.items()}
    missing = set(expected) - set(got)
    unexpected = set(got) - set(expected)
    mismatched = {k for k in set(expected) & set(got) if expected[k] != got[k]}
    return expected, got, missing, unexpected, mismatched


def _arch_hint(got):
    try:
        arch = infer_architecture(got)
    except UserError:
        return " Set model_depth / resnet_shortcut / n_classes / widen_factor to match it."
    return (f" The checkpoint holds {arch.describe()}: pass --model_depth={arch.model_depth} "
            f"--resnet_shortcut={arch.resnet_shortcut} --n_classes={arch.n_classes} "
            f"--widen_factor={arch.widen_factor:g} --conv1_t_size={arch.conv1_t_size}.")


def _mismatch_error(path, missing, unexpected, mismatched, expected, got):
    parts = []
    if missing:
        parts.append(f"missing {len(missing)}: {_list(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)}: {_list(unexpected)}")
    if mismatched:
        shown = sorted(mismatched)[:4]
        parts.append("shape mismatch: " + ", ".join(f"{k} {got[k]} vs model {expected[k]}" for k in shown))
    return UserError(f"{path} does not match the model ({'; '.join(parts)}).{_arch_hint(got)}")


def _load(net, params, allowed=()):
    not_loaded, _ = ms.load_param_into_net(net, params, strict_load=True)
    not_loaded = set(not_loaded) - set(allowed)
    if not_loaded:
        raise UserError(f"parameters not loaded: {_list(not_loaded)}")


def load_strict(net, path):
    """Load every parameter of ``net`` from ``path``; anything missing, extra or mis-shaped is an error."""
    params = network_params(read_checkpoint(path))
    expected, got, missing, unexpected, mismatched = _compare(net, params)
    if missing or unexpected or mismatched:
        raise _mismatch_error(path, missing, unexpected, mismatched, expected, got)
    _load(net, params)
    log.info("loaded %d parameters from %s", len(params), path)
    return params


def load_pretrained(net, path, n_classes=None):
    """Fine-tuning load: everything but ``fc`` must match; ``fc`` is kept (re-initialised) when the class
    counts differ. Returns a short description of what was done."""
    params = network_params(read_checkpoint(path))
    expected, got, missing, unexpected, mismatched = _compare(net, params)
    n_pre = got.get("fc.weight", (None,))[0]
    replace_head = bool(set(HEAD) & mismatched)
    if replace_head:
        mismatched -= set(HEAD)
        params = {k: v for k, v in params.items() if k not in HEAD}
    if missing or unexpected or mismatched:
        raise _mismatch_error(path, missing, unexpected, mismatched, expected, got)
    _load(net, params, allowed=HEAD if replace_head else ())
    n_model = expected["fc.weight"][0]
    if replace_head:
        msg = (f"loaded {len(params)} pretrained parameters from {path}; fc replaced: pretrained head has "
               f"{n_pre} classes, model has {n_model} (fc re-initialised)")
        log.warning(msg)
    else:
        msg = f"loaded {len(params)} pretrained parameters from {path} (fc kept: {n_model} classes)"
        log.info(msg)
    if n_classes is not None and n_model != n_classes:
        raise UserError(f"model has {n_model} classes but n_classes is {n_classes}")
    return msg


def save_checkpoint_atomic(save_obj, path, append_dict=None):
    """ms.save_checkpoint to a temporary name in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.ckpt")
    try:
        ms.save_checkpoint(save_obj, str(tmp), append_dict=append_dict)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
