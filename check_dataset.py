"""Check a dataset before a long run: folders exist, frame counts match the annotation, no frame is missing
(a gap), frames decode; warns about degenerate data (a class without training or validation videos, one class,
videos shorter than --sample_duration, default 16).

    python check_dataset.py --annotation_path ~/dataset/ucf101/json/ucf101_01.json --video_path ~/dataset/ucf101/jpg
"""
import sys

from src.cli import run_main
from src.data.checkdata import main as check_main


def main(argv=None):
    return run_main(check_main, argv)


if __name__ == "__main__":
    sys.exit(main())
