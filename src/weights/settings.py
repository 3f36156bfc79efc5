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
MODEL_KEYS = ("model", "model_depth", "resnet_shortcut", "conv1_t_size", "conv1_t_stride", "no_max_pool",
              "widen_factor", "wide_resnet_k", "resnext_cardinality", "n_input_channels", "n_classes")
INPUT_KEYS = ("sample_size", "sample_duration", "sample_t_stride")
# how it was evaluated in training, and the dataset name that names result files: defaults only
VIEW_KEYS = ("inference_stride", "test_clips", "test_crops", "dataset")


def from_config(cfg, class_names=None, model_keys=None) -> dict:
    """The settings of a model trained (or converted) with ``cfg``; ``model_keys`` limits them to the
    architecture (a converted upstream file: its input settings are not known)."""
    from src.data.spatial import MEAN, STD

    keys = model_keys or (*MODEL_KEYS, *INPUT_KEYS, *VIEW_KEYS)
    settings = {"version": VERSION, **{k: cfg[k] for k in keys if k in cfg}}
    if model_keys is None:
        settings.update(mean=[float(v) for v in MEAN], std=[float(v) for v in STD])
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


def apply_settings(cfg, settings: dict | None, source):
    """``cfg`` with a model's settings in place of the config file's (a copy; said in one line). A command-line
    value (``cfg.explicit``) of a model or input key that differs from the model's is an error naming both."""
    if not settings:
        return cfg
    conflicts = [k for k in (*MODEL_KEYS, *INPUT_KEYS) if k in settings and k in cfg.explicit
                 and cfg[k] != settings[k]]
    if conflicts:
        listed = ", ".join(f"--{k}={cfg[k]} but the model has {settings[k]!r}" for k in conflicts)
        raise UserError(f"{source} was trained with other settings ({listed}): drop those options (the model's "
                        f"are used), or pass the model that has them")
    changed = {key: settings[key] for key in (*MODEL_KEYS, *INPUT_KEYS, *VIEW_KEYS)
               if key in settings and key in cfg and key not in cfg.explicit and cfg[key] != settings[key]}
    if changed:
        log.info("settings from %s: %s", source, ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    return cfg.replace(**changed)


def class_names(settings: dict | None):
    return (settings or {}).get("class_names")


def read_model_settings(path) -> dict | None:
    """The settings a model file carries: a checkpoint's entry, an ONNX model's metadata (else what its input
    and output shapes say), a MINDIR / AIR file's ``<file>.json``. None when it carries none."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _onnx_settings(path)
    if suffix in (".mindir", ".air"):
        return read_sidecar(path)
    from src.weights.checkpoint import read_checkpoint

    return read_from_checkpoint(read_checkpoint(path), path)


def _onnx_settings(path) -> dict | None:
    import onnx  # optional, slow to import: ONNX users only

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not an ONNX file: the ONNX Runtime session says so, with the reason
        return None
    meta = {p.key: p.value for p in model.metadata_props}
    if KEY in meta:
        return from_text(meta[KEY], path)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    if len(dims) != 5 or not all(dims[1:]) or len(out) != 2 or not out[1]:
        return None
    return {"version": VERSION, "n_input_channels": dims[1], "sample_duration": dims[2], "sample_size": dims[3],
            "n_classes": out[1]}


def write_onnx_settings(path, settings: dict) -> None:
    """Record ``settings`` in an ONNX file's metadata (in place: the caller writes under a temporary name)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = KEY, to_text(settings)
    onnx.save(model, str(path))


def adopt(cfg, model_path):
    """(``cfg`` with the settings of ``model_path`` applied (see apply_settings), those settings or None)."""
    settings = read_model_settings(model_path)
    return apply_settings(cfg, settings, model_path), settings
