"""export.py's logic: checkpoint -> MINDIR / AIR / ONNX (network + softmax), written atomically and
checked against the checkpoint's network before it gets its final name."""
import logging
from pathlib import Path

import mindspore as ms
import mindspore.onnx  # noqa: F401  (ms.onnx.export)
import numpy as np

from src.atomic import commit, make_dirs, scratch_dir
from src.deploy.graph import WithSoftmax, explicit_padding
from src.deploy.lite import lite_release_for, mindir_versions
from src.inference.predictors import checkpoint_network, clip_shape, mindir_predictor, onnx_predictor, runtime_errors
from src.errors import UserError
from src.logs import out
from src.runtime import device_candidates
from src.metrics import softmax
from src.weights.model_file import write_onnx_record, write_sidecar

log = logging.getLogger("resnet3d")

EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
TOLERANCE = 1e-4


def input_shape(batch, arch, data):
    """The exported graph's input: ``batch`` clips of the architecture's channels and the data's clip size."""
    return (batch, *clip_shape(arch, data))


def output_path(export):
    """The file export.py writes (the export section's name and format)."""
    fmt = export.file_format
    name = export.file_name or "resnet3d"
    for ext in EXTENSIONS.values():  # accept --file_name=x.onnx as well as --file_name=x
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return Path(name + EXTENSIONS[fmt]).expanduser()


def check_format_supported(file_format, device_target):
    """AIR is written by the Ascend backend only: say so before building anything."""
    device = device_target
    if device == "auto":
        device = device_candidates()[0][0]  # what auto will pick, without touching a device
    if file_format == "AIR" and device != "Ascend":
        raise UserError(f"AIR export needs an Ascend device (--device_target=Ascend on a machine with the "
                        f"Ascend toolkit); device_target is {device_target} ({device} here). Export MINDIR "
                        f"instead: it runs on Ascend 310 too (scripts/run_infer_310.sh)")


def random_clip(shape, seed=0):
    """A normalised-looking input (zero mean, unit variance) for parity checks."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def exported_predictor(path, fmt):
    return onnx_predictor(path) if fmt == "ONNX" else mindir_predictor(path)


def parity(reference, path, fmt, clip):
    """Max |exported(clip) - reference(clip)| over the probabilities."""
    try:
        got = exported_predictor(path, fmt)(clip)
    except runtime_errors() as err:  # a mis-written graph; anything else (memory, a bug) is not one
        raise UserError(f"the exported {fmt} cannot be run ({str(err).splitlines()[0][:200]}); "
                        f"nothing was written") from None
    if got.shape != reference.shape:
        raise UserError(f"exported {fmt} output has shape {got.shape}, the checkpoint's network {reference.shape}")
    return float(np.abs(got - reference).max())


def _save_graph(graph, shape, fmt, stem, path):
    """MindSpore's exporter writes ``graph`` to ``stem`` + the format's extension; a write that fails (a full
    disk: MindSpore's serializer raises OSError) is one UserError naming the output ``path``."""
    dummy = ms.Tensor(np.zeros(shape, np.float32))
    try:
        if fmt == "ONNX":  # ms.export(file_format="ONNX") is deprecated in MindSpore 2.10 (and says so)
            ms.onnx.export(graph, dummy, file_name=str(stem) + EXTENSIONS[fmt])
        else:
            ms.export(graph, dummy, file_name=str(stem), file_format=fmt)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or err}): check free space and permissions of "
                        f"{path.parent}; nothing was written") from None


def export_network(net, fmt, shape, path, check=True, seed=0, record=None):
    """Export trained ``net`` (logits, native convs) as network + softmax to ``path`` in format ``fmt``, for
    inputs of ``shape`` (:func:`input_shape`).

    The file is written under a temporary name; MINDIR / ONNX are re-loaded and compared with ``net``
    on a random clip; the final name is given only when the difference is <= TOLERANCE.
    Returns the max abs difference (None when not checked).
    """
    clip = random_clip(shape, seed)
    net.set_train(False)
    # reference probabilities from the unmodified network (float64 softmax of its logits)
    reference = softmax(net(ms.Tensor(clip)).asnumpy()) if check and fmt != "AIR" else None
    if fmt == "ONNX":
        net = explicit_padding(net)  # the ONNX exporter mis-writes padded max-pool and per-dim conv pads
    graph = WithSoftmax(net)
    graph.set_train(False)
    path = Path(path)
    make_dirs(path.parent)
    # MindSpore's savers chmod the folder they write into (ONNX: 0700): write into a private folder of ours
    with scratch_dir(path) as work:
        stem = work / path.stem
        tmp = stem.with_name(stem.name + EXTENSIONS[fmt])
        _save_graph(graph, shape, fmt, stem, path)
        if not tmp.is_file():
            raise UserError(f"MindSpore wrote no {fmt} file for {path}: see the messages above")
        diff = None
        if reference is not None:
            diff = parity(reference, tmp, fmt, clip)
            out.info(f"parity {fmt}: max abs difference to the checkpoint's network {diff:.3g} "
                     f"(batch {shape[0]}, tolerance {TOLERANCE:g})")
            if not diff <= TOLERANCE:
                raise UserError(f"the exported {fmt} differs from the checkpoint's network by {diff:.3g} "
                                f"(> {TOLERANCE:g}); nothing was written to {path}")
        if reference is None and fmt == "AIR":
            out.info("parity AIR: not checked (no AIR loader outside the Ascend toolkit); check the MINDIR export")
        if record and fmt == "ONNX":
            write_onnx_record(tmp, record)
        elif record:
            write_sidecar(path, record)  # before the model: a model never lacks its record
        commit(tmp, path)
        return diff


def export_model(model, export, record):
    """Load the checkpoint ``model`` (a ModelSource) strictly into the native network of ``record`` (what the
    exported file will carry: the checkpoint's record with the entry script's views) and export it as the
    ``export`` section says, the record in the ONNX metadata or beside a MINDIR / AIR file. An INT8 file
    (quantize.py) exports to ONNX in QDQ form (src.deploy.qdq). Returns (path, diff)."""
    path = output_path(export)
    if model.record is not None and model.record.precision == "int8":
        from src.deploy.qdq import export_int8

        return export_int8(model, export, record, path)
    arch = record.spec()
    net = checkpoint_network(arch, model.path)
    shape = (export.export_batch_size, arch.n_input_channels, record.config["sample_duration"],
             record.config["sample_size"], record.config["sample_size"])
    diff = export_network(net, export.file_format, shape, path, record=record)
    out.info(f"exported {model.path} -> {path} ({export.file_format}, input "
             f"{'x'.join(str(d) for d in shape)}, {arch.n_classes} classes, softmax output)")
    if export.file_format == "MINDIR":  # MindSpore's exporter records its version in the model; Lite needs the same
        exporter, ir_version = mindir_versions(path)
        out.info(f"{path} records MindSpore {exporter} (MINDIR version {ir_version}): serve it with MindSpore "
                 f"Lite {lite_release_for(exporter)}, the exporting MindSpore's release")
    return path, diff
