"""The training job both launchers start: train.py with the seed scripts' fixed arguments."""
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def config_for(dataset) -> Path:
    """A dataset's own <name>_config.yaml, else ucf101_config.yaml (the documented template)."""
    own = ROOT / f"{dataset}_config.yaml"
    return own if own.is_file() else ROOT / "ucf101_config.yaml"


@dataclass(frozen=True)
class TrainJob:
    dataset: str
    video_path: str
    annotation_path: str
    result_path: Path
    pretrain: str  # the whole --pretrain_path=... option
    extra: tuple  # --key=value options passed on

    @classmethod
    def from_args(cls, args):
        """DATASET VIDEO_PATH ANNOTATION_PATH RESULT_PATH --pretrain_path=... [--key=value ...], as the
        scripts pass them (checked and absolute)."""
        dataset, video, annotation, result, pretrain, *extra = args
        return cls(dataset, video, annotation, Path(result), pretrain, tuple(extra))

    def train_args(self, *options) -> list:
        """train.py and its arguments; ``options`` come right after the config."""
        return [str(ROOT / "train.py"), f"--config_path={config_for(self.dataset)}", f"--dataset={self.dataset}",
                *options,
                f"--video_path={self.video_path}", f"--annotation_path={self.annotation_path}",
                f"--result_path={self.result_path}", self.pretrain, *self.extra]

    def command(self, *options) -> list:
        return [sys.executable, *self.train_args(*options)]
