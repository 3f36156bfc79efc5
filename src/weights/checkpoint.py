"""MindSpore checkpoints: reading and writing them (CRC-checked, atomic), comparing their parameters with a
network, and loading them for fine-tuning, strictly (eval, export), or as training state (resume).

Evaluating random weights must be impossible: ``load_strict`` fails on any missing, unexpected or
shape-mismatched parameter. ``load_pretrained`` replaces only ``fc`` (loudly) when class counts differ.
"""
import logging
import os
import re
from pathlib import Path

import mindspore as ms

from src.atomic import atomic_output
from src.errors import UserError
from src.weights.naming import infer_architecture

log = logging.getLogger("resnet3d")

# entries a training checkpoint carries besides the network: optimiser and loop state
_TRAINING_STATE = re.compile(r"^(moments|accum|accum_grads|moment1|moment2|stat)\.|^(learning_rate|global_step|"
                             r"momentum|scale_sense|current_iterator_step|last_overflow_iterator_step|epoch_num|"
                             r"step_num|epoch|step|best_.*|train_.*)$")
HEAD = ("fc.weight", "fc.bias")
# entries train.py appends to its checkpoints besides network and optimiser
TRAINING_EXTRAS = ("epoch_num", "step_num", "best_top1", "best_epoch", "lr_steps", "config", "plateau",
                   "model_settings", "architecture")
# the family a checkpoint holds (src.models.families.architecture_name), written by train.py and pth_to_ckpt.py
ARCHITECTURE_KEY = "architecture"
# recomputed from the config on resume (its length follows n_epochs), never restored
RECOMPUTED = ("learning_rate",)


def _list(keys, limit=8):
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def read_checkpoint(path):
    """All entries of a MindSpore .ckpt as a dict name -> Parameter, with a clear error if unreadable."""
    return _read(path)


def read_entries(path, names):
    """Only the entries ``names`` of a .ckpt (a record, the family): no tensor is made and no CRC computed
    (the tensors' read checks it)."""
    first = []

    def wanted(name):  # MindSpore refuses a filter that keeps nothing: the first entry is kept too, then dropped
        if not first:
            first.append(name)
        return name in names or name == first[0]

    entries = _read(path, choice_func=wanted, crc_check=False)
    return {k: v for k, v in entries.items() if k in names}


def _read(path, **options):
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder: pass a .ckpt file (eval.py and export.py also take "
                        f"a result folder through --inference_ckpt_path / --ckpt_file)")
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found: check the path (pth_to_ckpt.py converts upstream .pth files)")
    if path.stat().st_size == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes): write or download it again")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") or head[:2] == b"\x80\x02":
        raise UserError(f"{path} is a PyTorch file, not a MindSpore checkpoint: convert it with "
                        f"python pth_to_ckpt.py --pth_path={path} --ckpt_path=<out>.ckpt")
    try:
        return ms.load_checkpoint(str(path), **{"crc_check": True, **options})
    except (ValueError, RuntimeError, TypeError) as err:
        if not os.access(path, os.R_OK):
            raise UserError(f"checkpoint {path} is not readable (permissions)") from None
        raise UserError(f"checkpoint {path} is corrupted or truncated ({str(err).splitlines()[0][:120]}): "
                        f"was its save interrupted, or the download incomplete? Use another checkpoint or "
                        f"write it again") from None


def network_params(params):
    """Only the network's parameters of a checkpoint (drops optimiser / loop state)."""
    return {k: v for k, v in params.items()
            if not _TRAINING_STATE.search(k) and k not in TRAINING_EXTRAS and not isinstance(v, str)}


def compare_params(expected, params):
    """(missing, unexpected, mismatched) names of ``params`` (name -> anything with .shape) against
    ``expected`` (name -> shape tuple)."""
    got = {k: tuple(v.shape) for k, v in params.items()}
    missing = set(expected) - set(got)
    unexpected = set(got) - set(expected)
    mismatched = {k for k in set(expected) & set(got) if tuple(expected[k]) != got[k]}
    return missing, unexpected, mismatched


def network_shapes(net):
    return {p.name: tuple(p.shape) for p in net.get_parameters()}


def _compare(net, params):
    expected = network_shapes(net)
    return (expected, {k: tuple(v.shape) for k, v in params.items()}) + compare_params(expected, params)


def _arch_hint(got):
    try:
        arch = infer_architecture(got)
    except UserError:
        return " Set model_depth / resnet_shortcut / n_classes / widen_factor to match it."
    option = f" {arch.options()}" if arch.options() else ""
    return (f" The checkpoint holds {arch.describe()}: pass --model={arch.model}{option} "
            f"--model_depth={arch.model_depth} "
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


def check_finite(params, path):
    """A checkpoint whose weights hold NaN or infinity (a diverged run) is refused, naming the tensors."""
    import numpy as np

    bad = [k for k, v in params.items() if not np.isfinite(v.asnumpy()).all()]
    if bad:
        raise UserError(f"{path} holds non-finite values (NaN/inf) in {len(bad)} tensors ({_list(bad, 4)}): "
                        f"it comes from a diverged training run; use an earlier checkpoint or retrain with a "
                        f"lower --lr_max")


def check_architecture(net, entries, path):
    """A checkpoint that records another family than ``net``'s (built by build_model) is refused; files
    without the record (older ones, the original port's) are checked by their shapes only."""
    recorded, expected = entries.get(ARCHITECTURE_KEY), getattr(net, "architecture", None)
    if isinstance(recorded, str) and expected and recorded != expected:
        raise UserError(f"{path} holds a {recorded} network but the config builds {expected}: set --model "
                        f"(and its options) to match the checkpoint")


def load_strict(net, path):
    """Load every parameter of ``net`` from ``path``; anything missing, extra, mis-shaped or non-finite is
    an error."""
    entries = read_checkpoint(path)
    check_architecture(net, entries, path)
    params = network_params(entries)
    expected, got, missing, unexpected, mismatched = _compare(net, params)
    if missing or unexpected or mismatched:
        raise _mismatch_error(path, missing, unexpected, mismatched, expected, got)
    check_finite(params, path)
    _load(net, params)
    log.info("loaded %d parameters from %s", len(params), path)
    return params


def load_pretrained(net, path, n_pretrain_classes=0):
    """Fine-tuning load: everything but ``fc`` must match; ``fc`` is kept (re-initialised) when the class
    counts differ. ``n_pretrain_classes`` > 0 requires the checkpoint's head to have that many classes.
    Logs and returns a short description of what was done."""
    entries = read_checkpoint(path)
    check_architecture(net, entries, path)
    params = network_params(entries)
    expected, got, missing, unexpected, mismatched = _compare(net, params)
    n_pre = got.get("fc.weight", (None,))[0]
    if n_pretrain_classes and n_pre != n_pretrain_classes:
        raise UserError(f"{path} has a {n_pre}-class head but --n_pretrain_classes is {n_pretrain_classes}: "
                        f"pass the right checkpoint, or --n_pretrain_classes=0 to accept any head")
    check_finite(params, path)
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
    return msg


def save_checkpoint(save_obj, path, append_dict=None):
    """ms.save_checkpoint with a CRC (read_checkpoint verifies it), written under a temporary name and
    renamed: never a half-written file under the final name."""
    with atomic_output(path) as tmp:
        try:
            ms.save_checkpoint(save_obj, str(tmp), append_dict=append_dict, crc_check=True)
        except (RuntimeError, ValueError, OSError) as err:
            tmp.with_suffix(".tmp").unlink(missing_ok=True)  # MindSpore's own partial file
            raise OSError(str(err).splitlines()[0] if str(err) else "save failed") from None
    return Path(path)


def load_training_state(train_step, path):
    """Load network + optimiser state of a train.py checkpoint into ``train_step``; return the other
    entries it holds (epoch, step, best, config fingerprint) as plain Python values."""
    params = read_checkpoint(path)
    if "epoch_num" not in params or "global_step" not in params:
        raise UserError(f"{path} is not a train.py checkpoint (no epoch_num / optimiser state): use it as "
                        f"--pretrain_path to fine-tune from it instead of --resume")
    state = {k: params.pop(k) for k in list(params) if k in TRAINING_EXTRAS}
    for name in RECOMPUTED:
        params.pop(name, None)
    expected = {p.name for p in train_step.get_parameters()} - set(RECOMPUTED)
    missing = sorted(expected - set(params))
    if missing:
        raise UserError(f"{path} does not match this model/optimiser (missing {len(missing)}: "
                        f"{', '.join(missing[:6])}); resume with the same config it was trained with")
    _load(train_step, params, allowed=RECOMPUTED)
    return {k: _plain(v) for k, v in state.items()}


def _plain(value):
    if isinstance(value, str):
        return value
    data = value.asnumpy()
    return data.item() if data.size == 1 else data
