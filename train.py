"""Fine-tune (or train from scratch) a 3D ResNet on UCF101 / HMDB51 frames.

python train.py --config_path=./ucf101_config.yaml --video_path=... --annotation_path=... \
    --result_path=... [--pretrain_path=pretrained.ckpt] [--resume=auto] [--key=value ...]
"""
import sys

from src.config import load_config, run_main


def _main(argv):
    from src.train.trainer import train

    cfg = load_config(argv, prog="train.py")
    summary = train(cfg)
    if summary["best_top1"] >= 0:
        print(f"best video top-1: {100 * summary['best_top1']:.1f}% ({cfg.result_path}/best.ckpt)")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
