"""Export a checkpoint (network + softmax) to MINDIR, AIR or ONNX, checked against the checkpoint.

    python export.py --ckpt_file=best.ckpt --file_format=MINDIR|AIR|ONNX --n_classes=51 --batch_size=1
Everything printed is also appended to <dataset>_export.log beside the exported file.
"""
import sys

from src.cli import run_main
from src.config import DEPLOY_SECTIONS, load_config


def _main(argv):
    cfg = load_config(argv, aliases={"batch_size": "export_batch_size"}, prog="export.py", sections=DEPLOY_SECTIONS)
    from src.deploy.export import check_format_supported, export_from_config, output_path
    from src.logs import log_file
    from src.runtime import setup_runtime
    from src.weights.model_file import use_model

    # the checkpoint's own settings (architecture, clip size and length, classes) replace the config file's
    cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")

    check_format_supported(cfg)  # before touching a device: AIR needs Ascend
    log = output_path(cfg).parent / f"{cfg.dataset}_export.log"
    with log_file(log, f"export.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        # the exported graph always holds native convolutions (the fast op does not export)
        setup_runtime(cfg, conv_impl="native", distributed=False, infer_precision="fp32")
        export_from_config(cfg, model)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
