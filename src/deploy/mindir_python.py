"""The mindir-python backend of the Ascend-310 flow: MindSpore's own Python API runs the MINDIR on the
CPU (no Ascend needed), on the same .bin clips and with the same result files as the C++ program::

    python -m src.deploy.mindir_python --mindir_path=M.mindir --dataset_path=preprocess_Result/data
        [--result_path=result_Files] [--device_id=0]

The clip loop, the result-file naming and the manifest checks are those of src.deploy.infer310; the
predictor is src.inference.predictors' MINDIR one.
"""
import sys

from src.cli import ArgumentParser, run_main
from src.deploy.infer310 import run_on_clips
from src.inference.predictors import mindir_predictor
from src.logs import out
from src.runtime import setup_context


def run_mindir(mindir_path, data_dir, result_dir):
    """Step 2 with MindSpore's Python API (no Ascend needed): same inputs, same result files as main.cc."""
    count = run_on_clips(data_dir, result_dir, lambda: mindir_predictor(mindir_path))
    out.info(f"ran {mindir_path} on {count} clips -> {result_dir}")
    return count


def main(argv=None):
    """``python -m src.deploy.mindir_python --mindir_path=M --dataset_path=DATA --result_path=OUT``:
    the mindir-python backend, with the C++ program's options."""
    parser = ArgumentParser(prog="python -m src.deploy.mindir_python",
                                     description="Run a MINDIR on pre-processed .bin clips (MindSpore Python API).")
    parser.add_argument("--mindir_path", required=True)
    parser.add_argument("--dataset_path", required=True, help="directory of .bin clips (preprocess_Result/data)")
    parser.add_argument("--result_path", default="result_Files", help="directory for the result .bin files")
    parser.add_argument("--device_id", type=int, default=0, help="accepted for the C++ program's interface")

    def body(args_list):
        args = parser.parse_args(args_list)
        setup_context("CPU", "GRAPH", conv_impl="native")  # the MINDIR holds native convolutions
        run_mindir(args.mindir_path, args.dataset_path, args.result_path)
        return 0

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
