"""Evaluate a checkpoint: sliding windows over every validation video, video score = mean clip softmax.

python eval.py --config_path=./ucf101_config.yaml --video_path=... --annotation_path=... \
    --result_path=... --inference_ckpt_path=best.ckpt
Prints the original's line, e.g. `clip: 88.8% top-1: 92.7%  top-5: 99.3%`, then the video counts.
"""
import sys

from src.config import load_config, run_main


def _main(argv):
    from src.evaluate_checkpoint import evaluate_checkpoint

    cfg = load_config(argv, prog="eval.py")
    result = evaluate_checkpoint(cfg)
    print(result.report())
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
