import json

import numpy as np

from check_dataset import main as check_dataset_main
from src.data.synthetic import CLASSES, main as synthetic_main, render_video
from src.generate_hmdb51_json import main as hmdb51_main
from src.generate_ucf101_json import main as ucf101_main
from src.generate_video_jpgs import main as generate_video_jpgs
from tests.helpers.tiny import tiny_data_config, tiny_eval_dataset, tiny_train_dataset


def test_render_is_deterministic_and_moves():
    a, b = render_video(1, 0, seed=5, frames=8, size=32), render_video(1, 0, seed=5, frames=8, size=32)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert np.stack(a).shape == (8, 32, 32, 3)
    assert np.abs(np.stack(render_video(1, 0, seed=6, frames=8, size=32)).astype(int) - np.stack(a)).mean() > 1
    assert len(CLASSES) == 8 and len({c[0] for c in CLASSES}) == 8


def test_synthetic_to_frames_to_json_to_datasets(tmp_path, capsys):
    root = tmp_path / "syn"
    assert synthetic_main(["--out", str(root), "--videos_per_class", "2", "--test_videos_per_class", "1",
                           "--frames", "8", "--size", "32", "--seed", "3", "--hmdb", "--n_jobs", "2"]) == 0
    assert len(list((root / "videos").glob("*/v_*_g01_c0?.avi"))) == 24
    assert (root / "labels" / "testlist01.txt").read_text().splitlines()[0] == "MoveLeft/v_MoveLeft_g01_c01.avi"
    assert generate_video_jpgs(["--video_path", str(root / "videos"), "--target_path", str(root / "jpg"),
                                "--size", "0", "--n_jobs", "2", "--no_progress"]) == 0
    args = ["--dir_path", str(root / "labels"), "--video_path", str(root / "jpg"), "--dst_dir_path", str(root / "json")]
    assert ucf101_main(args) == 0 and hmdb51_main(args) == 0
    out = capsys.readouterr().out
    assert "extraction: 24 videos, 24 extracted, 0 skipped (already complete), 0 failed, 192 frames" in out
    assert "ucf101_01.json: 8 classes, 16 training, 8 validation, 0 listed but missing on disk" in out
    assert "hmdb51_1.json: 8 classes, 16 training, 8 validation" in out
    ann = root / "json" / "ucf101_01.json"
    assert json.loads(ann.read_text())["database"]["v_Grow_g01_c02"]["annotations"]["segment"] == [1, 9]
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(root / "jpg")]) == 0

    cfg = tiny_data_config(ann, root / "jpg", sample_size=24, sample_duration=4, batch_size=4, train_crop="random",
                      eval_batch_size=5, num_workers=2)
    batches = list(tiny_train_dataset(cfg, epoch=0).create_dict_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == 4 and batches[0]["clip"].shape == (4, 3, 4, 24, 24)
    assert sorted(int(x) for b in batches for x in b["label"]) == sorted(list(range(8)) * 2)
    dataset, videos = tiny_eval_dataset(cfg)
    rows = list(dataset.create_dict_iterator(num_epochs=1, output_numpy=True))
    assert sum(len(b["label"]) for b in rows) == videos.n_clips == 16  # 8 videos x 2 windows
    assert [label for _, label in videos] == list(range(8)) and videos.class_names[0] == "MoveLeft"
