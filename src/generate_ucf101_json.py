"""Write ucf101 annotation JSON files (upstream format) from the official split files.

    python3 generate_ucf101_json.py --dir_path ~/dataset/ucf101/labels --video_path ~/dataset/ucf101/jpg \
        --dst_dir_path ~/dataset/ucf101/json [--allow_missing]
Prints per split: classes, training/validation counts, videos missing on disk, videos in no split.
"""
import sys

from src.cli import run_main
from src.data.annotations import main as annotations_main


def main(argv=None):
    return run_main(lambda a: annotations_main("ucf101", a), argv)


if __name__ == "__main__":
    sys.exit(main())
