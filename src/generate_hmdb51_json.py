"""Write hmdb51 annotation JSON files (upstream format) from the official split files.

    python3 generate_hmdb51_json.py --dir_path ~/dataset/hmdb51/labels --video_path ~/dataset/hmdb51/jpg \
        --dst_dir_path ~/dataset/hmdb51/json [--allow_missing]
Prints per split: classes, training/validation counts, videos missing on disk, videos in no split.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # works from src/ and from the repo root

from src.cli import run_main  # noqa: E402
from src.data.annotations import main as annotations_main  # noqa: E402


def main(argv=None):
    return run_main(lambda a: annotations_main("hmdb51", a), argv)


if __name__ == "__main__":
    sys.exit(main())
