"""src/metrics.py on hand-made outputs: clip / video top-1 / top-5, ignore, missing videos."""
import numpy as np
import pytest

from src.metrics import compute_accuracy, confusion_matrix, softmax


def _probs(rows):
    return np.array(rows, np.float32)


def test_clip_and_video_accuracy_by_hand():
    # 3 videos of 6 classes; video 0 has 2 clips (one wrong), video 1 one clip, video 2 two clips
    probs = _probs([[.6, .1, .1, .1, .05, .05], [.1, .5, .2, .1, .05, .05],  # video 0, label 0: mean -> class 0
                    [.1, .1, .1, .05, .15, .5],                               # video 1, label 4: top-5 hit only
                    [.05, .05, .8, .05, .03, .02], [.1, .1, .6, .1, .05, .05]])  # video 2, label 2
    labels = [0, 0, 4, 2, 2]
    vidx = [0, 0, 1, 2, 2]
    acc = compute_accuracy(probs, labels, vidx, video_labels=[0, 4, 2])
    assert acc.clip == pytest.approx(3 / 5)
    assert acc.top1 == pytest.approx(2 / 3) and acc.top5 == pytest.approx(1.0)
    assert acc.line() == "clip: 60.0% top-1: 66.7%  top-5: 100.0%"
    assert acc.count_line() == "videos: ground truth 3, predicted 3, missing 0; clips: 5"
    assert acc.video_predictions[0][0] == 0


def test_ignore_leaves_missing_videos_out_of_the_denominator():
    probs = _probs([[.9, .1], [.2, .8]])
    acc = compute_accuracy(probs, [0, 0], [0, 2], video_labels=[0, 1, 0, 1])  # videos 1 and 3 never predicted
    assert (acc.n_ground_truth, acc.n_predicted, acc.n_missing) == (4, 2, 2)
    assert acc.top1 == pytest.approx(1 / 2)
    strict = compute_accuracy(probs, [0, 0], [0, 2], video_labels=[0, 1, 0, 1], ignore=False)
    assert strict.top1 == pytest.approx(1 / 4) and strict.top5 == pytest.approx(2 / 4)  # top-5 of 2 classes
    assert "missing 2" in strict.count_line()


def test_video_score_is_mean_of_softmax_not_of_logits():
    # logits whose mean argmax differs from the mean-softmax argmax
    logits = np.array([[2.0, 0.0]] * 3 + [[0.0, 20.0]], np.float32)
    assert logits.mean(axis=0).argmax() == 1
    acc = compute_accuracy(softmax(logits), [0] * 4, [0] * 4, video_labels=[0])
    assert acc.top1 == 1.0


def test_confusion_matrix_counts_predicted_videos_only():
    cm = confusion_matrix([0, 1, 1], [[0, 1], [0, 1], None], 2)
    assert cm.tolist() == [[1, 0], [1, 0]]


def test_mean_class_accuracy_and_per_class_rows_by_hand():
    from src.metrics import per_class_rows

    # 5 videos: class 0 x3 (2 right, 1 predicted as 1), class 1 x1 (right), class 2 x1 (predicted as 0)
    probs = _probs([[.8, .1, .1], [.7, .2, .1], [.2, .7, .1], [.1, .8, .1], [.6, .1, .3]])
    labels = [0, 0, 0, 1, 2]
    acc = compute_accuracy(probs, labels, [0, 1, 2, 3, 4], video_labels=labels)
    assert acc.top1 == pytest.approx(3 / 5)
    assert acc.mean_class == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert acc.report().splitlines()[1] == "mean class accuracy: 55.6%"
    rows = per_class_rows(labels, acc.video_predictions, ["a", "b", "c"])
    assert [(r["class"], r["videos"], r["most_confused_with"]) for r in rows] == [("a", 3, "b"), ("b", 1, ""),
                                                                                  ("c", 1, "a")]
    assert [r["top1"] for r in rows] == pytest.approx([2 / 3, 1.0, 0.0])
    # the rows add up to the overall numbers
    assert sum(r["videos"] for r in rows) == acc.n_predicted
    assert sum(r["top1"] * r["videos"] for r in rows) == pytest.approx(acc.top1 * acc.n_predicted)
    assert sum(r["top5"] * r["videos"] for r in rows) == pytest.approx(acc.top5 * acc.n_predicted)


def test_the_views_are_named_on_the_line_only_when_not_the_original_protocol():
    probs = _probs([[.9, .1]])
    assert "(" not in compute_accuracy(probs, [0], [0], video_labels=[0]).line()
    line = compute_accuracy(probs, [0], [0], video_labels=[0], views="10 clips x 3 crops").line()
    assert line == "clip: 100.0% top-1: 100.0%  top-5: 100.0%  (10 clips x 3 crops)"


def test_an_unlabelled_video_is_no_class_of_the_mean_class_accuracy():
    probs = _probs([[.8, .1, .1], [.7, .2, .1], [.2, .7, .1], [.1, .8, .1], [.6, .1, .3]])
    labels = [0, 0, 0, 1, 2]
    with_unlabelled = compute_accuracy(_probs([[.8, .1, .1], [.7, .2, .1], [.2, .7, .1], [.1, .8, .1], [.6, .1, .3],
                                               [.1, .1, .8]]), labels + [-1], [0, 1, 2, 3, 4, 5],
                                       video_labels=labels + [-1])
    labelled_only = compute_accuracy(probs, labels, [0, 1, 2, 3, 4], video_labels=labels)
    assert with_unlabelled.mean_class == labelled_only.mean_class
