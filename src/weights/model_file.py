"""Model files and the record they carry (:class:`src.record.ModelRecord`): a checkpoint's ``model_settings``
entry, an ONNX model's metadata, a MINDIR / AIR file's ``<file>.json`` sidecar.

An entry script resolves its model once (:func:`open_model`: a file, or a result folder's best / latest
checkpoint), which reads the record without loading the tensors and validates it; the tensors are read once,
later, by whoever builds the network. :func:`apply_record` puts the record's values in place of the config
file's: a command-line value that contradicts the model's architecture or input is an error naming both;
the evaluation views and the dataset name are the model's defaults only.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

from src.atomic import write_text
from src.data.folder_split import annotation_of_folder, read_split, split_file
from src.errors import UserError
from src.record import ARCH_KEYS, INPUT_KEYS, RECORD_KEYS, VERSION, ModelRecord, RecordError, printable
from src.rundir import RunDir

log = logging.getLogger("resnet3d")

KEY = "model_settings"  # the checkpoint entry / ONNX metadata key that holds the record
KINDS = {".onnx": "onnx", ".mindir": "mindir", ".air": "air"}  # anything else is read as a checkpoint


@dataclass(frozen=True)
class ModelSource:
    """A resolved model file: its path, its kind (checkpoint, onnx, mindir, air) and its validated record
    (None when it carries none)."""
    path: Path
    kind: str
    record: ModelRecord | None


def resolve_checkpoint(path, dataset, option):
    """A checkpoint file, or for a result folder its best.ckpt (else its latest training checkpoint)."""
    if not path:
        raise UserError(f"--{option} is empty: pass the checkpoint to use (e.g. result_path/best.ckpt)")
    path = Path(path)
    if path.is_dir():
        run_dir = RunDir(path, dataset)
        ckpt = run_dir.checkpoint_to_evaluate()
        holder = run_dir.holder()
        if holder:  # a live training may replace best.ckpt at its next better epoch
            best = run_dir.read_best_metrics() if ckpt == run_dir.best_ckpt else None
            which = f"its best so far (epoch {best['epoch']})" if best and "epoch" in best else ckpt.name
            log.warning("%s is held by a running training (%s): using %s as it is now (%s); it may change",
                        path, printable(holder), which, ckpt)
        return ckpt
    if not path.is_file():
        raise UserError(f"--{option}: checkpoint {path} not found: check the path (pth_to_ckpt.py converts "
                        f"upstream .pth files)")
    return path


def open_model(path, dataset="", option="ckpt_file") -> ModelSource:
    """Resolve ``path`` (an exported model, a checkpoint, or a result folder) once and read its record."""
    kind = KINDS.get(Path(str(path)).suffix.lower(), "checkpoint") if path else "checkpoint"
    if kind == "checkpoint":
        path = resolve_checkpoint(path, dataset, option)
    elif not Path(path).is_file():
        raise UserError(f"--{option}: {kind.upper()} model {path} not found: check the path (export.py writes one)")
    path = Path(path)
    return ModelSource(path, kind, read_record(path, kind))


def read_record(path, kind=None) -> ModelRecord | None:
    """The validated record ``path`` carries, or None."""
    path = Path(path)
    kind = kind or KINDS.get(path.suffix.lower(), "checkpoint")
    if kind == "onnx":
        return _onnx_record(path)
    if kind in ("mindir", "air"):
        side = sidecar(path)
        return ModelRecord.from_json(side.read_text(encoding="utf-8"), side) if side.is_file() else None
    from src.weights.checkpoint import read_entries

    text = read_entries(path, (KEY,)).get(KEY)
    return None if text is None else ModelRecord.from_json(str(text), path)


def sidecar(model_path) -> Path:
    """Where a MINDIR / AIR file's record is written: ``<file>.json`` beside it."""
    return Path(f"{model_path}.json")


def write_sidecar(model_path, record: ModelRecord) -> Path:
    return write_text(sidecar(model_path), record.to_json())


def _onnx_record(path) -> ModelRecord | None:
    import onnx  # optional, slow to import: ONNX users only
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError):  # not an ONNX file: the ONNX Runtime session says so
        return None
    meta = {p.key: p.value for p in model.metadata_props}
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] if model.graph.input else []
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] if model.graph.output else []
    graph = {}
    if len(dims) == 5 and all(dims[1:]) and dims[3] == dims[4]:
        graph.update(n_input_channels=dims[1], sample_duration=dims[2], sample_size=dims[3])
    if len(out) == 2 and out[1]:
        graph["n_classes"] = out[1]
    if KEY not in meta:
        return ModelRecord.create(graph, source=path) if len(graph) == 4 else None
    record = ModelRecord.from_json(meta[KEY], path)
    wrong = [k for k, v in graph.items() if k in record.config and record.config[k] != v]
    if wrong:
        listed = ", ".join(f"{k} {printable(record.config[k])} but its graph has {graph[k]}" for k in wrong)
        raise RecordError(f"{path}: its model record contradicts its graph ({listed}): the file was altered; "
                          f"export it again")
    return record


def write_onnx_record(path, record: ModelRecord) -> None:
    """Record ``record`` in an ONNX file's metadata (in place: the caller writes under a temporary name)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = KEY, record.to_json()
    onnx.save(model, str(path))


def record_of(cfg, class_names=None, keys=RECORD_KEYS, split=None) -> ModelRecord:
    """The record of a model trained, converted or exported with ``cfg`` (any mapping of configuration values;
    ``keys``: the keys known, e.g. only the architecture of a converted upstream file); ``split``: the
    plain-folder split it was trained on (src.data.folder_split)."""
    return ModelRecord.create({k: cfg[k] for k in keys if k in cfg}, class_names, split=split)


def apply_record(cfg, record: ModelRecord | None):
    """``cfg`` with a model's values in place of the config file's (a copy; said in one line). A command-line
    value (``cfg.explicit``) of an architecture or input key that differs from the model's is an error naming
    both."""
    if record is None:
        return cfg
    values = record.config
    conflicts = [k for k in (*ARCH_KEYS, *INPUT_KEYS) if k in values and k in cfg.explicit and cfg[k] != values[k]]
    if conflicts:
        listed = ", ".join(f"--{k}={cfg[k]} but the model has {values[k]!r}" for k in conflicts)
        raise UserError(f"{record.source} was trained with other settings ({listed}): drop those options (the "
                        f"model's are used), or pass the model that has them")
    changed = {k: v for k, v in values.items() if k in cfg and k not in cfg.explicit and cfg[k] != v}
    if changed:
        log.info("settings from %s: %s", record.source, ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    return cfg.replace(**changed)




def use_model(cfg, path, option):
    """(``cfg`` with the record of the model at ``path`` applied, the :class:`ModelSource`): what an entry
    script that takes a model does first. A model trained on a plain folder (no --annotation_path given) gets
    the same split of ``cfg.video_path`` again, checked against the one it records (src.data.folder_split)."""
    source = open_model(path, cfg.dataset, option)
    cfg = apply_record(cfg, source.record)
    split = source.record.split if source.record else None
    if split and not cfg.annotation_path and cfg.video_path:
        beside = split_file(source.path.parent, cfg.dataset)  # the one its training wrote, if it is still there
        folder = source.path.parent if read_split(beside) == dict(split) else cfg.result_path
        cfg = cfg.replace(annotation_path=annotation_of_folder(cfg.video_path, "", folder, cfg.dataset,
                                                               split["val_fraction"], expected=dict(split)))
    return cfg, source


def adopt_architecture(cfg, path, option="pretrain_path"):
    """``cfg`` with the architecture of the pretrained weights at ``path`` (family, depth, shortcut, widths, stem:
    what their record says) and their normalisation, said in one line; only the head keeps following the
    annotation's classes. An explicit command-line value that contradicts the file is an error naming both."""
    if not path or not Path(path).is_file():
        return cfg
    record = read_record(path)
    if record is None:
        return cfg
    # the architecture, and the normalisation the weights were trained with; the head follows the annotation
    values = {k: v for k, v in record.config.items()
              if (k in ARCH_KEYS and k != "n_classes") or k in ("mean", "std")}
    conflicts = [k for k in values if k in cfg.explicit and cfg[k] != values[k]]
    if conflicts:
        listed = ", ".join(f"--{k}={cfg[k]} but the file has {values[k]!r}" for k in conflicts)
        raise UserError(f"--{option}={path} holds another architecture ({listed}): drop those options (the file's "
                        f"architecture is used), or pass weights of the architecture you want")
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    log.info("architecture from %s: %s (the head follows the annotation's classes)", path, shown)
    return cfg.replace(**values)


__all__ = ["KEY", "VERSION", "ModelSource", "open_model", "read_record", "write_onnx_record", "write_sidecar",
           "record_of", "apply_record", "resolve_checkpoint", "sidecar", "use_model", "adopt_architecture"]
