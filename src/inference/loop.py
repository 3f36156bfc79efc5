"""The evaluation loop shared by eval.py, eval_onnx.py, extract_features.py and in-training evaluation:
every window of every video through one predictor, the ranks' shares gathered, aggregated by src.metrics.

Any backend is a ``predict(clips: float32 [b,3,T,H,W]) -> probabilities [b, n_classes]`` function
(src.inference.predictors); the dataset, the aggregation and the metric are the same for all of them.
"""
import time

import mindspore as ms
import numpy as np
from mindspore import ops
from tqdm import tqdm

from src.errors import UserError, wrapped_user_error
from src.metrics import VideoAccumulator
from src.logs import out


def run_evaluation(predict, eval_data, ignore=True, verbose=True, rank_size=1):
    """Run ``predict`` over every window of every video. Returns (Accuracy, VideoAccumulator).

    ``eval_data`` is what src.data.datasets.create_eval_dataset returns: (dataset, index) with
    ``index.videos`` = [(video_id, label_index)] in video_index order. ``verbose``: a progress bar and
    the ``evaluated N clips of V videos in X s`` line. ``rank_size`` > 1: every rank ran its share of the
    windows (create_eval_dataset's rank_id / rank_size); the shares are gathered, so every rank returns
    the result of the whole evaluation, identical to one process's.
    """
    dataset, index = eval_data
    acc = VideoAccumulator([label for _, label in index.videos])
    total = dataset.get_dataset_size()
    bar = None
    if verbose:
        bar = tqdm(total=total, desc="eval", unit="batch", leave=False)
    start = time.time()
    try:
        for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
            probs = predict(batch["clip"])
            acc.add(probs, batch["label"], batch["video_index"], batch["window_index"])
            if bar is not None:
                bar.update(1)
    except RuntimeError as err:  # a UserError of a dataset worker arrives wrapped by MindSpore
        message = wrapped_user_error(err)
        if message is None:
            raise
        raise UserError(message) from None
    if bar is not None:
        bar.close()
    if rank_size > 1:
        acc = gather(acc, rank_size)
    result = acc.compute(ignore=ignore, views=getattr(index, "views", ""))
    if verbose:
        out.info(f"evaluated {result.n_clips} clips of {result.n_ground_truth} videos in {time.time() - start:.1f} s")
    return result, acc


def gather(acc, rank_size):
    """The accumulators of all ranks as one, rows in single-process order (video, then window), so the
    aggregation sums in the same order and gives the same bits."""
    probs, labels, vidx, widx = acc.arrays()
    local = np.concatenate([probs, np.stack([labels, vidx, widx], 1).astype(np.float32)], 1)
    counts = ops.AllGather()(ms.Tensor(np.array([[len(local)]], np.float32))).asnumpy().astype(int).ravel()
    width = local.shape[1]
    padded = np.zeros((counts.max(), width), np.float32)
    padded[:len(local)] = local
    rows = ops.AllGather()(ms.Tensor(padded)).asnumpy().reshape(rank_size, counts.max(), width)
    every = np.concatenate([rows[r, :counts[r]] for r in range(rank_size)])
    every = every[np.lexsort((every[:, -1], every[:, -2]))]
    merged = VideoAccumulator(acc.video_labels)
    n_classes = probs.shape[1] if len(probs) else width - 3
    merged.add(every[:, :n_classes], every[:, -3].astype(np.int64), every[:, -2].astype(np.int64),
            every[:, -1].astype(np.int64))
    return merged
