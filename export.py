"""Export a checkpoint (network + softmax) to MINDIR, AIR or ONNX, checked against the checkpoint.

    python export.py --ckpt_file=best.ckpt --file_format=MINDIR|AIR|ONNX --n_classes=51 --batch_size=1
Everything printed is also appended to <dataset>_export.log beside the exported file.
"""
import sys

from src.cli import run_main
from src.config import DEPLOY_SECTIONS, load_config


def _main(argv):
    cfg = load_config(argv, aliases={"batch_size": "export_batch_size"}, prog="export.py", sections=DEPLOY_SECTIONS)
    from src.deploy.export import check_format_supported, export_model, output_path
    from src.logs import log_file
    from src.runtime import setup_runtime
    from src.weights.model_file import record_of, use_model

    # the checkpoint's own settings (architecture, clip size and length, classes) replace the config file's
    cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")

    check_format_supported(cfg.file_format, cfg.device_target)  # before touching a device: AIR needs Ascend
    # what the exported file carries: the checkpoint's record, with the views and names this run uses
    carried = model.record
    record = record_of(cfg, carried.class_names if carried else None, split=carried.split if carried else None)
    log = output_path(cfg.export).parent / f"{cfg.dataset}_export.log"
    with log_file(log, f"export.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        # the exported graph always holds native convolutions (the fast op does not export)
        setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", conv_impl="native", distributed=False)
        export_model(model, cfg.export, record)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
