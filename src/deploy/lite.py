"""The lite-python backend of the Ascend-310 flow: MindSpore Lite's Python API (``mindspore_lite.Model``)
runs the MINDIR on Ascend, on the same .bin clips and with the same result files as the C++ program::

    python -m src.deploy.lite --mindir_path=M.mindir [--dataset_path=preprocess_Result/data]
        [--result_path=result_Files] [--time_path=time_Result] [--device_id=0]
    python -m src.deploy.lite --check      # only: is MindSpore Lite's Python package importable?

The clip loop, the result-file naming and the manifest checks are those of src.deploy.infer310.
"""
import argparse
import time
from importlib import metadata
from pathlib import Path
from collections.abc import Callable

import numpy as np

from src.atomic import write_text
from src.cli import run_main
from src.deploy.infer310 import DATA_DIR, run_on_clips
from src.errors import UserError

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
            f"mindspore_lite wheel of MindSpore Lite {version} for this Python (pip install mindspore-lite=={version}, "
            f"or the .whl from the MindSpore Lite download page; wheels exist only for some Python versions), "
            f"or use --backend=ascend310 (C++) or --backend=mindir-python") from None
    return mindspore_lite


def lite_predictor(mindir_path: str, device_id: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(clip float32 [1,3,T,H,W]) -> probabilities`` with a Lite model built for Ascend ``device_id``."""
    mslite = import_lite()
    path = Path(mindir_path)
    if not path.is_file():
        raise UserError(f"MINDIR {path} not found (--mindir_path): export one with "
                        f"python export.py --file_format=MINDIR --batch_size=1")
    context = mslite.Context()
    context.target = ["ascend"]
    context.ascend.device_id = int(device_id)
    model = mslite.Model()
    try:
        model.build_from_file(str(path), mslite.ModelType.MINDIR, context)
    except RuntimeError as err:  # Lite reports a failed build as RuntimeError with its status text
        raise UserError(f"MindSpore Lite cannot build {path} on Ascend device {device_id} "
                        f"({str(err).splitlines()[0][:200]}): check the device id (npu-smi info)") from None
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
            out = predict(clip)
            elapsed.append(time.perf_counter() - start)
            return out

        return timed

    count = run_on_clips(data_dir, result_dir, load)
    summary = (f"NN inference cost average time: {1000 * sum(elapsed) / count:.4f} ms of infer_count {count}")
    print(summary)
    if time_dir:
        write_text(Path(time_dir) / TIMING_FILE, summary + "\n")
    print(f"ran {mindir_path} (MindSpore Lite, Ascend device {device_id}) on {count} clips -> {result_dir}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.deploy.lite",
                                     description="Run a MINDIR on pre-processed .bin clips with MindSpore Lite "
                                                 "(Python API, Ascend).")
    parser.add_argument("--check", action="store_true", help="only check that mindspore_lite can be imported")
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
            lite = import_lite()
            print(f"mindspore_lite {getattr(lite, '__version__', '(version unknown)')} found")
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
