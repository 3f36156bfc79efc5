"""Write hmdb51 annotation JSON files (upstream format) from the official split files.

    python3 generate_hmdb51_json.py --dir_path ~/dataset/hmdb51/labels --video_path ~/dataset/hmdb51/jpg \
        --dst_dir_path ~/dataset/hmdb51/json [--allow_missing]
Prints per split: classes, training/validation counts, videos missing on disk, videos in no split.
"""
import sys

from src.cli import run_main
from src.data.annotations import main as annotations_main


def main(argv=None):
    return run_main(lambda a: annotations_main("hmdb51", a), argv)


if __name__ == "__main__":
    sys.exit(main())
