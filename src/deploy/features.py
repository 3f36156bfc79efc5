"""Features for other uses: the pooled feature of every video (the input of ``fc``, mean over its views).

Writes ``<dataset>_<subset>_features.npy`` (float32 [videos, features]) and ``<dataset>_<subset>_features.csv``
(row, video id, label) into result_path. The views, the preprocessing and the averaging are evaluation's.
"""
import csv
import logging

import mindspore as ms
import mindspore.nn as nn
import numpy as np

from src.atomic import atomic_output
from src.data.datasets import canonical_subset, eval_dataset_of
from src.inference.loop import run_evaluation
from src.errors import UserError
from src.logs import out
from src.models.factory import build_model
from src.models.inference import inference_network
from src.rundir import RunDir
from src.weights.checkpoint import load_pretrained, load_strict

log = logging.getLogger("resnet3d")


def feature_network(cfg, runtime, ckpt=None):
    """The network without its head: a checkpoint loaded strictly (ckpt_file), or pretrained weights whose
    head may have any number of classes (pretrain_path). ``ckpt``: cfg.ckpt_file as the entry script resolved it."""
    if bool(cfg.ckpt_file) == bool(cfg.pretrain_path):
        raise UserError("pass exactly one of --ckpt_file (a checkpoint of this model, or a result folder) and "
                        "--pretrain_path (pretrained weights with any head)")
    net = build_model(cfg.arch, conv_impl=runtime.conv_impl)
    if cfg.ckpt_file:
        load_strict(net, ckpt or cfg.ckpt_file)
    else:
        load_pretrained(net, cfg.pretrain_path, cfg.n_pretrain_classes)
    net.fc = nn.Identity()  # the pooled feature is what fc would see
    net.set_train(False)
    return net


def extract_features(cfg, runtime, ckpt=None):
    """Write the features and their index; return (features array, index rows)."""
    net = inference_network(feature_network(cfg, runtime, ckpt), runtime.conv_impl, runtime.infer_precision)
    data = eval_dataset_of(cfg, cfg.eval_subset)
    _, acc = run_evaluation(lambda clips: net(ms.Tensor(clips)).asnumpy(), data, ignore=cfg.ignore)
    features, counts = acc.video_scores()
    index = data[1]
    rows = [(i, vid, index.class_names[label] if label >= 0 else "") for i, (vid, label) in enumerate(index.videos)]
    run_dir = RunDir(cfg.result_path, cfg.dataset).make()
    stem = f"{cfg.dataset}_{canonical_subset(cfg.eval_subset)}_features"
    with atomic_output(run_dir.file(f"{stem}.npy")) as tmp:
        np.save(tmp, features.astype(np.float32))
    with atomic_output(run_dir.file(f"{stem}.csv")) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "video", "label"])
            writer.writerows(rows)
    out.info(f"features: {features.shape[0]} videos x {features.shape[1]} ({int(counts.sum())} views) -> "
             f"{run_dir.file(stem + '.npy')}, {run_dir.file(stem + '.csv')}")
    return features.astype(np.float32), rows
