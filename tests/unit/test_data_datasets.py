import re

import numpy as np
import pytest

from src.data.datasets import EvalSource, TrainSource, load_annotation, steps_per_epoch
from src.data.presets import ClipSpec
from src.errors import UserError
from tests.helpers.media import tiny_annotated_dataset
from tests.helpers.tiny import tiny_data_config, tiny_eval_dataset, tiny_train_dataset


@pytest.fixture
def tiny(tmp_path):
    ann, jpg = tiny_annotated_dataset(tmp_path)
    return ann, jpg


def _batches(dataset):
    return [(b["clip"], b["label"]) for b in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]


def test_load_annotation_subsets_and_aliases(tiny, caplog):
    ann, jpg = tiny
    train, names = load_annotation(ann, jpg, "training")
    assert names == ["A", "B"] and [e.video_id for e in train] == ["v_A_0", "v_B_1", "v_A_2"]
    assert [(e.n_frames, e.label_index) for e in train] == [(6, 0), (10, 1), (3, 0)]
    for alias in ("validation", "val", "test"):
        assert [e.video_id for e in load_annotation(ann, jpg, alias)[0]] == ["v_B_3", "v_A_4"]
    with pytest.raises(UserError, match="subset 'dev'"):
        load_annotation(ann, jpg, "dev")
    import shutil
    shutil.rmtree(jpg / "B" / "v_B_3")
    with caplog.at_level("WARNING", logger="resnet3d"):
        assert len(load_annotation(ann, jpg, "val")[0]) == 1
    assert "1 validation videos" in caplog.text


def test_sharded_sizes_equal_across_ranks_and_cover_everything(tiny):
    ann, jpg = tiny
    cfg = tiny_data_config(ann, jpg)
    entries, _ = load_annotation(ann, jpg, "training")
    entries = entries * 3  # 9 samples
    for rank_size in (1, 2, 4):
        sources = [TrainSource(entries, ClipSpec.of(cfg.data, cfg.evaluation), cfg.seed, 0, r, rank_size)
                   for r in range(rank_size)]
        assert len({len(s) for s in sources}) == 1
        positions = sorted(r + i * rank_size for r in range(rank_size) for i in range(len(sources[r])))
        assert positions == list(range(len(sources[0]) * rank_size))
        seen = {int(s.order[r + i * rank_size]) for r, s in enumerate(sources) for i in range(len(s))}
        assert seen == set(range(len(entries)))
    assert steps_per_epoch(3, cfg.batch_size, rank_size=2) == 1  # ceil(3 / 2) = 2 samples -> 1 batch of 2


def test_same_seed_epoch_rank_identical_batches_other_epoch_differs(tiny):
    ann, jpg = tiny
    cfg = tiny_data_config(ann, jpg, train_crop="random", h_flip=True, colorjitter=True, num_workers=2, batch_size=1)
    first = _batches(tiny_train_dataset(cfg, epoch=3, rank_id=1, rank_size=2))
    again = _batches(tiny_train_dataset(tiny_data_config(ann, jpg, train_crop="random", h_flip=True,
                                                      colorjitter=True, num_workers=1, batch_size=1),
                                          epoch=3, rank_id=1, rank_size=2))
    other = _batches(tiny_train_dataset(cfg, epoch=4, rank_id=1, rank_size=2))
    assert len(first) == len(again) == len(other) == 2
    for (c1, l1), (c2, l2) in zip(first, again):
        assert c1.shape == (1, 3, 4, 32, 32) and c1.dtype == np.float32 and l1.dtype == np.int32
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(l1, l2)
    assert any(np.abs(a[0] - b[0]).max() > 1e-3 for a, b in zip(first, other))


def test_train_dataset_size_and_batch_too_large(tiny):
    ann, jpg = tiny
    dataset = tiny_train_dataset(tiny_data_config(ann, jpg, batch_size=2), epoch=0)
    assert dataset.get_dataset_size() == steps_per_epoch(3, 2) == 1
    with pytest.raises(UserError, match="--batch_size"):
        tiny_train_dataset(tiny_data_config(ann, jpg, batch_size=8), epoch=0)


def test_eval_dataset_windows_order_and_micro_batches(tiny):
    ann, jpg = tiny
    cfg = tiny_data_config(ann, jpg, inference_stride=4, sample_duration=4, eval_batch_size=2, eval_subset="test")
    dataset, videos = tiny_eval_dataset(cfg)
    assert list(videos) == [("v_B_3", 1), ("v_A_4", 0)] and videos.videos is videos
    assert videos.class_names == ["A", "B"]
    rows = []
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        assert batch["clip"].shape[1:] == (3, 4, 32, 32) and len(batch["clip"]) <= 2
        assert all(batch[k].dtype == np.int32 for k in ("label", "video_index", "window_index"))
        rows += list(zip(batch["video_index"], batch["window_index"], batch["label"]))
    # 12 frames -> windows at 1, 5, 9 ; 8 frames -> 1, 5 (upstream: the 5-8 window is full, then stop)
    assert [tuple(int(x) for x in r) for r in rows] == [(0, 0, 1), (0, 1, 1), (0, 2, 1), (1, 0, 0), (1, 1, 0)]
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    assert videos.n_clips == 5 == len(EvalSource(load_annotation(ann, jpg, "val")[0], spec))


@pytest.mark.parametrize("entry, message", [
    ("not an object", "is a str, not an object"),
    ({"subset": "training", "annotations": {"label": "A", "segment": ["1", "9"]}}, "has segment ['1', '9']"),
    ({"subset": "training", "annotations": "A"}, "has 'annotations' that is not an object"),
])
def test_malformed_annotation_entries_are_one_error(tmp_path, entry, message):
    import json

    from src.data.datasets import read_annotation_json

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"labels": ["A"], "database": {"v1": entry}}))
    with pytest.raises(UserError, match=re.escape(f"entry 'v1' {message}")):
        read_annotation_json(path)
