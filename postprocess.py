"""Ascend-310 step 3: accuracy of the result .bin files, printed as eval.py prints it.

    python postprocess.py --config_path=ucf101_config.yaml [--pre_path=preprocess_Result]
        [--result_dir=result_Files]
"""
import sys

from src.cli import run_main
from src.config import load_config
from src.config_keys import Key


OPTIONS = {"pre_path": Key("preprocess_Result", "Folder preprocess.py wrote (clips and manifest)."),
           "result_dir": Key("result_Files", "Folder of the inference results (.bin), one per clip."),
           "mindir_path": Key("", "The exported model: its settings (<model>.json beside it) give the class count.")}


def _main(argv):
    cfg = load_config(argv, prog="postprocess.py", extra=OPTIONS,
                      sections=("placement", "runtime", "paths", "arch", "data", "evaluation"))
    from src.weights.model_file import use_model

    if cfg.mindir_path:  # the class count the model was trained with (its <model>.json)
        cfg, _ = use_model(cfg, cfg.mindir_path, "mindir_path")
    from src.deploy.infer310 import read_results

    result = read_results(cfg.pre_path, cfg.result_dir, cfg.n_classes, ignore=cfg.ignore)
    print(result.report())
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
