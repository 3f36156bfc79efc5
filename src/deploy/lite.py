"""The lite-python backend of the Ascend-310 flow: MindSpore Lite's Python API (``mindspore_lite.Model``)
runs the MINDIR on Ascend, on the same .bin clips and with the same result files as the C++ program::

    python -m src.deploy.lite --mindir_path=M.mindir [--dataset_path=preprocess_Result/data]
        [--result_path=result_Files] [--time_path=time_Result] [--device_id=0]
    python -m src.deploy.lite --check [--mindir_path=M.mindir]  # only: is Lite importable (and M's release)?

The clip loop, the result-file naming and the manifest checks are those of src.deploy.infer310.

MindSpore Lite cannot read a MINDIR of a later MindSpore release: Lite 2.0 refuses one of MindSpore 2.10 ("can
only support the maximum mind ir version: 1 ... mind ir version: 3" in its log) and its Python API then raises only
"Common error code." (docs/MINDSPORE_LITE.md). So the versions are compared before building: Lite's package
version against the MindSpore version that the MINDIR itself records (ModelProto.model_version, written by
MindSpore's exporter).
"""
import re
import time
from importlib import metadata
from pathlib import Path
from collections.abc import Callable

import numpy as np

from src.atomic import write_text
from src.cli import ArgumentParser, run_main
from src.deploy.infer310 import DATA_DIR, run_on_clips
from src.errors import UserError
from src.logs import out

TIMING_FILE = "test_perform_static.txt"


def _mindspore_version() -> str:
    try:
        return metadata.version("mindspore")
    except metadata.PackageNotFoundError:
        return "<your MindSpore version>"


def import_lite():
    """The ``mindspore_lite`` module, or a UserError saying how to get it."""
    try:
        import mindspore_lite
    except ImportError as err:
        version = _mindspore_version()
        raise UserError(
            f"MindSpore Lite's Python package is not installed ({err}): on the Ascend host install the "
            f"mindspore_lite wheel of MindSpore Lite {version} for this Python (the .whl from the MindSpore Lite "
            f"download page; pip install mindspore-lite=={version} where an index serves it: PyPI's only one, 2.0.0, "
            f"cannot read MINDIRs of later MindSpore releases; wheels exist only for some Python versions), "
            f"or use --backend=ascend310 (C++) or --backend=mindir-python") from None
    return mindspore_lite


# top-level fields of MindSpore's ModelProto (mindspore/core/proto/mind_ir.proto)
_MODEL_VERSION_FIELD = 5  # string: the version of the MindSpore that exported the model
_MIND_IR_VERSION_FIELD = 13  # int: the MINDIR format version (3 for MindSpore 2.10)


def _varint(stream) -> int | None:
    value = shift = 0
    while byte := stream.read(1):
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
    return None


def mindir_versions(path) -> tuple[str | None, int | None]:
    """(exporting MindSpore version, mind_ir_version) as the MINDIR at ``path`` records them, read from its
    top-level protobuf fields without MindSpore (which need not be installed beside Lite); None where the
    file does not say (not a MINDIR, encrypted, or written by a tool that leaves the field empty)."""
    found = {}
    size = Path(path).stat().st_size
    with open(path, "rb") as stream:
        while len(found) < 2 and (key := _varint(stream)) is not None:
            field, wire = key >> 3, key & 7
            if wire == 0:  # varint
                value = _varint(stream)
                if field == _MIND_IR_VERSION_FIELD:
                    found["ir"] = value
            elif wire == 2:  # length-delimited: the graph and its weights are skipped, not read
                length = _varint(stream)
                if length is None or stream.tell() + length > size:
                    break
                if field == _MODEL_VERSION_FIELD:
                    found["ms"] = stream.read(length).decode("utf-8", errors="replace")
                else:
                    stream.seek(length, 1)
            elif wire in (1, 5):  # fixed 64 / 32 bits
                stream.seek(8 if wire == 1 else 4, 1)
            else:  # not protobuf that MindSpore writes
                break
    return found.get("ms"), found.get("ir")


def release(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a version string such as 2.10.0 or 2.10.0rc1; None if it has none."""
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(match[1]), int(match[2])) if match else None


def lite_release_for(exporter: str | None) -> str:
    """The MindSpore Lite release that reads a model exported by MindSpore ``exporter``: 2.10.0 -> 2.10.x."""
    return "{}.{}.x".format(*release(exporter)) if release(exporter) else "<the exporting MindSpore's release>"


def lite_version(mslite) -> str | None:
    """The installed MindSpore Lite's version: its package's, else the module's (a Lite unpacked by hand)."""
    try:
        return metadata.version("mindspore-lite")
    except metadata.PackageNotFoundError:
        return getattr(mslite, "__version__", None)


def check_lite_release(lite: str | None, path, exporter: str | None, ir_version: int | None) -> None:
    """Refuses, before building, a Lite older than the MindSpore that exported ``path``: it cannot read the
    model and would say only "Common error code."."""
    if release(lite) and release(exporter) and release(lite) < release(exporter):
        raise UserError(f"MindSpore Lite {lite} is older than MindSpore {exporter}, which exported {path} "
                        f"(MINDIR version {ir_version}), and cannot read it: Lite must be the exporting MindSpore's "
                        f"release, install MindSpore Lite {lite_release_for(exporter)} on the Ascend host (or "
                        f"export the model with the MindSpore release of your Lite)")


def build_failure(path, device_id: int, error: str, lite: str | None, exporter: str | None) -> str:
    """The message for a failed Model.build_from_file: Lite's Python error does not say why, so name the
    likely causes and how to tell them apart."""
    lite_text = f"MindSpore Lite {lite or '(version unknown)'}"
    model_text = f"MindSpore {exporter}" if exporter else "a MindSpore whose version the model does not record"
    return (f"{lite_text} cannot build {path} on Ascend device {device_id} ({error.splitlines()[0][:200]}); "
            f"Lite's log lines above say which of the likely causes it is: (1) Lite older than the MindSpore "
            f"that exported the model (\"can only support the maximum mind ir version\"; here {lite_text}, model "
            f"exported by {model_text}): Lite must be the exporting MindSpore's release, install MindSpore Lite "
            f"{lite_release_for(exporter)}; (2) the device or the Ascend toolkit (\"Init ascend failed\", a library "
            f"that cannot be opened, a device error): check --device_id={device_id} with npu-smi info and that the "
            f"CANN environment is set (source set_env.sh of the Ascend toolkit)")


def lite_predictor(mindir_path: str, device_id: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(clip float32 [1,3,T,H,W]) -> probabilities`` with a Lite model built for Ascend ``device_id``."""
    mslite = import_lite()
    path = Path(mindir_path)
    if not path.is_file():
        raise UserError(f"MINDIR {path} not found (--mindir_path): export one with "
                        f"python export.py --file_format=MINDIR --batch_size=1")
    lite = lite_version(mslite)
    exporter, ir_version = mindir_versions(path)
    check_lite_release(lite, path, exporter, ir_version)
    context = mslite.Context()
    context.target = ["ascend"]
    context.ascend.device_id = int(device_id)
    model = mslite.Model()
    try:
        model.build_from_file(str(path), mslite.ModelType.MINDIR, context)
    except RuntimeError as err:  # Lite reports a failed build as RuntimeError with its status text
        raise UserError(build_failure(path, device_id, str(err) or "no message", lite, exporter)) from None
    inputs = model.get_inputs()
    if len(inputs) != 1:
        raise UserError(f"expected a model with one input, {path} has {len(inputs)}")
    shape = list(inputs[0].shape)

    def predict(clip: np.ndarray) -> np.ndarray:
        if clip.size != int(np.prod(shape)):
            raise UserError(f"a clip of {clip.size} floats does not fit the model input {'x'.join(map(str, shape))}: "
                            f"export with --batch_size=1 and the preprocessing's sample_duration / sample_size")
        inputs[0].set_data_from_numpy(np.ascontiguousarray(clip, dtype=np.float32).reshape(shape))
        outputs = model.predict(inputs)
        return outputs[0].get_data_to_numpy()

    return predict


def run_lite(mindir_path: str, data_dir: str, result_dir: str, device_id: int = 0,
             time_dir: str | None = None) -> int:
    """Runs every clip of ``data_dir``; writes the result files and, like main.cc, the timing summary."""
    elapsed = []

    def load():
        predict = lite_predictor(mindir_path, device_id)

        def timed(clip):
            start = time.perf_counter()
            probs = predict(clip)
            elapsed.append(time.perf_counter() - start)
            return probs

        return timed

    count = run_on_clips(data_dir, result_dir, load)
    summary = (f"NN inference cost average time: {1000 * sum(elapsed) / count:.4f} ms of infer_count {count}")
    out.info(summary)
    if time_dir:
        write_text(Path(time_dir) / TIMING_FILE, summary + "\n")
    out.info(f"ran {mindir_path} (MindSpore Lite, Ascend device {device_id}) on {count} clips -> {result_dir}")
    return count


def _check_model(lite: str | None, mindir_path: str) -> None:
    """--check --mindir_path: the version check of lite_predictor, without building."""
    path = Path(mindir_path)
    if not path.is_file():
        raise UserError(f"MINDIR {path} not found (--mindir_path)")
    exporter, ir_version = mindir_versions(path)
    check_lite_release(lite, path, exporter, ir_version)
    out.info(f"{path}: exported by MindSpore {exporter or '(version not recorded)'} (MINDIR version {ir_version}); "
             f"Lite must be the exporting MindSpore's release ({lite_release_for(exporter)})")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m src.deploy.lite",
                                     description="Run a MINDIR on pre-processed .bin clips with MindSpore Lite "
                                                 "(Python API, Ascend).")
    parser.add_argument("--check", action="store_true",
                        help="only check that mindspore_lite can be imported (with --mindir_path: and that its "
                             "release can read the MINDIR)")
    parser.add_argument("--mindir_path", help="exported MINDIR (export.py --file_format=MINDIR --batch_size=1)")
    parser.add_argument("--dataset_path", default=f"./preprocess_Result/{DATA_DIR}",
                        help="directory of .bin clips (preprocess_Result/data)")
    parser.add_argument("--result_path", default="./result_Files", help="directory for the result .bin files")
    parser.add_argument("--time_path", default="./time_Result", help="directory for the timing summary")
    parser.add_argument("--device_id", type=int, default=0, help="Ascend device id")
    return parser


def main(argv: list[str] | None = None) -> int:
    def body(args_list):
        args = _parser().parse_args(args_list)
        if args.check:
            lite = lite_version(import_lite())
            out.info(f"mindspore_lite {lite or '(version unknown)'} found")
            if args.mindir_path:
                _check_model(lite, args.mindir_path)
            return 0
        if not args.mindir_path:
            raise UserError("--mindir_path is required (the exported MINDIR)")
        if args.device_id < 0:
            raise UserError(f"--device_id={args.device_id} is not a device number (0, 1, ...)")
        import_lite()  # before touching any file: the missing package is the likeliest problem
        run_lite(args.mindir_path, args.dataset_path, args.result_path, args.device_id, args.time_path)
        return 0

    return run_main(body, argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
