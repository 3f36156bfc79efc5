"""Extract JPEG frames from videos: <video_path>/<class>/<video>.avi -> <target_path>/<class>/<video>/image_00001.jpg.

    python3 generate_video_jpgs.py --video_path ~/dataset/ucf101/videos --target_path ~/dataset/ucf101/jpg
Options: --size 240 (shorter side, 0 = keep), --quality 75, --n_jobs (default all cores).
Re-runs skip complete videos (a replaced video is extracted again); failures and videos that decode
short (truncated files) are listed in <target_path>/extraction_failures.txt.
"""
import sys

from src.cli import run_main
from src.data.extract import main as extract_main


def main(argv=None):
    return run_main(extract_main, argv)


if __name__ == "__main__":
    sys.exit(main())
