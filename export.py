"""Export a checkpoint (network + softmax) to MINDIR, AIR or ONNX, checked against the checkpoint.

    python export.py --ckpt_file=best.ckpt --file_format=MINDIR|AIR|ONNX --n_classes=51 --batch_size=1
"""
import sys

from src.config import load_config, run_main


def _main(argv):
    cfg = load_config(argv, aliases={"batch_size": "export_batch_size"}, prog="export.py")
    from src.deploy.export import check_format_supported, export_from_config

    check_format_supported(cfg)  # before touching a device: AIR needs Ascend
    from src.context import setup_from_config

    # the exported graph always holds native convolutions (the fast op does not export)
    setup_from_config({**cfg, "conv_impl": "native"})
    export_from_config(cfg)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
