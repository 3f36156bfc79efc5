"""The settings that travel with a model: what it is (architecture, class count and names) and what input it
expects (clip size, length, frame stride, normalisation, the evaluation views it was validated with).

Written into every checkpoint train.py saves (epoch and best), into converted checkpoints (the architecture
pth_to_ckpt.py inferred), into an ONNX model's metadata and beside a MINDIR / AIR file (``<file>.json``).
The tools that take a model (eval.py, export.py, eval_onnx.py, predict.py, extract_features.py, the 310
pre/post-processing) read them with :func:`apply_settings`: the model's values replace the config file's; a
value given on the command line that contradicts the model is an error naming both. Evaluation views
(inference_stride, test_clips, test_crops) are the model's defaults only: another protocol may be asked for.
"""
import json
import logging
from pathlib import Path

from src.atomic import write_json
from src.errors import UserError

log = logging.getLogger("resnet3d")

KEY = "model_settings"          # the checkpoint entry / ONNX metadata key
VERSION = 1
# what defines the network and the input it was trained on: a contradicting command-line value is an error
MODEL_KEYS = ("model_depth", "resnet_shortcut", "conv1_t_size", "conv1_t_stride", "no_max_pool", "widen_factor",
              "n_input_channels", "n_classes")
INPUT_KEYS = ("sample_size", "sample_duration", "sample_t_stride")
# how it was evaluated in training: the default, but another protocol may be asked for
VIEW_KEYS = ("inference_stride", "test_clips", "test_crops")


def from_config(cfg, class_names=None, model_keys=None) -> dict:
    """The settings of a model trained (or converted) with ``cfg``; ``model_keys`` limits them to the
    architecture (a converted upstream file: its input settings are not known)."""
    from src.data.spatial import MEAN, STD

    keys = model_keys or (*MODEL_KEYS, *INPUT_KEYS, *VIEW_KEYS)
    settings = {"version": VERSION, **{k: cfg[k] for k in keys if k in cfg}}
    if model_keys is None:
        settings.update(dataset=cfg["dataset"], mean=[float(v) for v in MEAN], std=[float(v) for v in STD])
    if class_names is not None:
        settings["class_names"] = list(class_names)
    return settings


def to_text(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def from_text(text, source) -> dict:
    try:
        settings = json.loads(text)
    except ValueError:
        raise UserError(f"{source}: its recorded model settings are not valid JSON: write the model again") from None
    if not isinstance(settings, dict) or settings.get("version") != VERSION:
        raise UserError(f"{source}: model settings of an unknown version: use the version of this suite that "
                        f"wrote it")
    return settings


def read_from_checkpoint(params: dict, source) -> dict | None:
    """The settings a checkpoint records (``params``: read_checkpoint's dict), or None (older ones)."""
    value = params.get(KEY)
    return None if value is None else from_text(value if isinstance(value, str) else str(value), source)


def sidecar(model_path) -> Path:
    """Where a MINDIR / AIR file's settings are written: ``<file>.json`` beside it."""
    return Path(f"{model_path}.json")


def write_sidecar(model_path, settings: dict) -> Path:
    return write_json(sidecar(model_path), settings, indent=1)


def read_sidecar(model_path) -> dict | None:
    path = sidecar(model_path)
    return from_text(path.read_text(encoding="utf-8"), path) if path.is_file() else None


def apply_settings(cfg, settings: dict | None, source) -> dict:
    """Put a model's settings into ``cfg`` (in place) and return the keys that changed. A command-line value
    (``cfg.explicit``) of a model or input key that differs from the model's is an error naming both."""
    if not settings:
        return {}
    conflicts = [k for k in (*MODEL_KEYS, *INPUT_KEYS) if k in settings and k in cfg.explicit
                 and cfg[k] != settings[k]]
    if conflicts:
        listed = ", ".join(f"--{k}={cfg[k]} but the model has {settings[k]!r}" for k in conflicts)
        raise UserError(f"{source} was trained with other settings ({listed}): drop those options (the model's "
                        f"are used), or pass the model that has them")
    changed = {}
    for key in (*MODEL_KEYS, *INPUT_KEYS, *VIEW_KEYS):
        if key in settings and key in cfg and key not in cfg.explicit and cfg[key] != settings[key]:
            changed[key] = (cfg[key], settings[key])
            cfg[key] = settings[key]
    if changed:
        log.info("settings from %s: %s", source, ", ".join(f"{k}={new!r}" for k, (_, new) in changed.items()))
    return changed


def class_names(settings: dict | None):
    return (settings or {}).get("class_names")
