"""MindSpore checkpoints: reading and writing them (CRC-checked, atomic), comparing their parameters with a
network, and loading them for fine-tuning, strictly (eval, export), or as training state (resume).

Evaluating random weights must be impossible: ``load_strict`` fails on any missing, unexpected or
shape-mismatched parameter. ``load_pretrained`` replaces only ``fc`` (loudly) when class counts differ.
"""
import logging
import os
from contextlib import suppress
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
# the family a checkpoint holds (src.models.families.architecture_name), written by train.py and pth_to_ckpt.py
ARCHITECTURE_KEY = "architecture"
# the position of a training run (src.engine.state.TrainState's fields) as the checkpoint entries that hold it,
# in the order they are written; the names earlier versions wrote, so that their checkpoints still resume
STATE_ENTRIES = {"epoch": "epoch_num", "step": "step_num", "best_top1": "best_top1", "best_epoch": "best_epoch",
                 "lr_steps": "lr_steps", "fingerprint": "config", "plateau": "plateau"}
# entries train.py appends to its checkpoints besides network and optimiser
TRAINING_EXTRAS = (*STATE_ENTRIES.values(), "model_settings", ARCHITECTURE_KEY)
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


def _arch_hint(got, head=True):
    """What to pass to build the checkpoint's network; ``head`` False (fine-tuning replaces fc): without its
    class count, which must stay the data's."""
    try:
        arch = infer_architecture(got)
    except UserError:
        return f" Set model_depth / resnet_shortcut /{' n_classes /' if head else ''} widen_factor to match it."
    option = f" {arch.options()}" if arch.options() else ""
    classes = f" --n_classes={arch.n_classes}" if head else ""
    kept = "" if head else " (its fc is replaced: keep the --n_classes of your data)"
    return (f" The checkpoint holds {arch.describe()}: pass --model={arch.model}{option} "
            f"--model_depth={arch.model_depth} --resnet_shortcut={arch.resnet_shortcut}{classes} "
            f"--widen_factor={arch.widen_factor:g} --conv1_t_size={arch.conv1_t_size}{kept}.")


# what tells two networks apart, as infer_architecture reads it from their tensors: field -> its name in messages
_ARCH_FIELDS = {"model": "family", "model_depth": "depth", "resnet_shortcut": "shortcut",
                "widen_factor": "widen_factor", "wide_resnet_k": "wide_resnet_k",
                "resnext_cardinality": "resnext_cardinality", "conv1_t_size": "conv1_t_size",
                "n_input_channels": "input channels", "n_classes": "classes"}


def _architecture_differences(saved, built):
    """[(field, the checkpoint's value, the model's)] where the networks of two name -> shape dicts differ;
    None when either is not a network infer_architecture knows."""
    try:
        a, b = infer_architecture(saved), infer_architecture(built)
    except UserError:
        return None
    return [(f, getattr(a, f), getattr(b, f)) for f in _ARCH_FIELDS if getattr(a, f) != getattr(b, f)]


def _value(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _resume_mismatch(train_step, params, path):
    """The UserError for resuming ``path`` into a run that builds another network (family, depth, classes,
    ...): what differs, and fixes that work; None when the networks' architectures do not differ."""
    built = {p.name: tuple(p.shape) for p in train_step.get_parameters() if not _TRAINING_STATE.search(p.name)}
    saved = {k: tuple(v.shape) for k, v in network_params(params).items()}
    diffs = _architecture_differences(saved, built)
    if not diffs:
        return None
    listed = ", ".join(f"{_ARCH_FIELDS[f]} {_value(a)} vs {_value(b)}" for f, a, b in diffs)
    options = " ".join(f"--{f}={_value(a)}" for f, a, _ in diffs if f != "n_classes")
    if options:
        fix = f"resume with the options it was trained with ({options}), or start this run in another --result_path"
    else:
        n_saved = next(a for f, a, _ in diffs if f == "n_classes")
        fix = (f"start this run in another --result_path (to start from these weights, add --pretrain_path={path}: "
               f"its {n_saved}-class head is replaced), or resume with the data it was trained on")
    return UserError(f"--resume: {path} holds another network than this run builds (checkpoint vs this run: "
                     f"{listed}); a checkpoint resumes only the run that wrote it: {fix}")


def _mismatch_error(path, missing, unexpected, mismatched, expected, got, head=True):
    parts = []
    if missing:
        parts.append(f"missing {len(missing)}: {_list(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)}: {_list(unexpected)}")
    if mismatched:
        shown = sorted(mismatched)[:4]
        parts.append("shape mismatch: " + ", ".join(f"{k} {got[k]} vs model {expected[k]}" for k in shown))
    return UserError(f"{path} does not match the model ({'; '.join(parts)}).{_arch_hint(got, head)}")


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


def refuse_int8(entries, path):
    """An INT8 model file (quantize.py, src/quant) holds no float network to load: one error saying what to pass."""
    import json

    try:
        precision = json.loads(entries.get("model_settings", "{}")).get("precision")
    except (ValueError, TypeError, AttributeError):
        return  # a damaged record is the record reader's error
    if precision == "int8":
        raise UserError(f"{path} is an INT8 model file (quantize.py): this needs the float network (gradients, "
                        f"fine-tuning, MINDIR/AIR export); pass the FP32 checkpoint it was quantized from")


def load_strict(net, path):
    """Load every parameter of ``net`` from ``path``; anything missing, extra, mis-shaped or non-finite is
    an error."""
    entries = read_checkpoint(path)
    refuse_int8(entries, path)
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
    refuse_int8(entries, path)
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
        raise _mismatch_error(path, missing, unexpected, mismatched, expected, got, head=False)
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
        own = tmp.with_suffix(".tmp")  # MindSpore's partial-file name: it chmods what stands there, link or not
        with suppress(FileNotFoundError):
            os.unlink(own)  # a planted link is removed, never followed
        try:
            ms.save_checkpoint(save_obj, str(tmp), append_dict=append_dict, crc_check=True)
        except OSError:  # a write that failed (a full disk, permissions): atomic_output names the file
            tmp.with_suffix(".tmp").unlink(missing_ok=True)  # MindSpore's own partial file
            raise
        except (RuntimeError, ValueError, TypeError) as err:  # not a write: what was to be saved
            tmp.with_suffix(".tmp").unlink(missing_ok=True)
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise UserError(f"cannot save {path}: MindSpore could not read the values to save ({first}); nothing "
                            f"was written") from None
    return Path(path)


def load_training_state(train_step, path):
    """Load network + optimiser state of a train.py checkpoint into ``train_step``; return the other
    entries it holds (epoch, step, best, config fingerprint) as plain Python values."""
    params = read_checkpoint(path)
    if STATE_ENTRIES["epoch"] not in params or "global_step" not in params:
        raise UserError(f"{path} is not a train.py checkpoint (no epoch_num / optimiser state): use it as "
                        f"--pretrain_path to fine-tune from it instead of --resume")
    state = {k: params.pop(k) for k in list(params) if k in TRAINING_EXTRAS}
    for name in RECOMPUTED:
        params.pop(name, None)
    expected = {p.name for p in train_step.get_parameters()} - set(RECOMPUTED)
    missing = sorted(expected - set(params))
    if missing:
        raise _resume_mismatch(train_step, params, path) or UserError(
            f"{path} does not match this model/optimiser (missing {len(missing)}: {', '.join(missing[:6])}); "
            f"resume with the same config it was trained with, or start this run in another --result_path")
    try:
        _load(train_step, params, allowed=RECOMPUTED)
    except RuntimeError as err:  # MindSpore's shape or type mismatch
        raise _resume_mismatch(train_step, params, path) or UserError(
            f"{path} does not match this model/optimiser ({str(err).splitlines()[0][:200]}); resume with the same "
            f"config it was trained with, or start this run in another --result_path") from None
    return {k: _plain(v) for k, v in state.items()}


def _plain(value):
    if isinstance(value, str):
        return value
    data = value.asnumpy()
    return data.item() if data.size == 1 else data
