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
from src.inference.predictors import int8_inference_network, int8_record
from src.errors import UserError
from src.logs import out
from src.models.factory import build_model
from src.models.inference import inference_network
from src.rundir import RunDir
from src.weights.checkpoint import load_pretrained, load_strict

log = logging.getLogger("resnet3d")


def feature_network(arch, runtime, ckpt="", pretrain_path="", n_pretrain_classes=0):
    """The network ``arch`` without its head: a checkpoint ``ckpt`` loaded strictly (ckpt_file as the entry script
    resolved it), or pretrained weights whose head may have any number of classes (``pretrain_path``)."""
    if bool(ckpt) == bool(pretrain_path):
        raise UserError("pass exactly one of --ckpt_file (a checkpoint of this model, or a result folder) and "
                        "--pretrain_path (pretrained weights with any head)")
    net = build_model(arch, conv_impl=runtime.conv_impl)
    if ckpt:
        load_strict(net, ckpt)
    else:
        load_pretrained(net, pretrain_path, n_pretrain_classes)
    net.fc = nn.Identity()  # the pooled feature is what fc would see
    net.set_train(False)
    return net


def extract_features(runtime, ckpt="", *, paths, data, arch, evaluation, batch_size, num_workers):
    """Write the features of the annotation's ``evaluation.eval_subset`` and their index into
    ``paths.result_path``; return (features array, index rows). The network: feature_network's (``ckpt``, else
    ``paths.pretrain_path``); the views: evaluation's (the config's sections, eval_batch_size, num_workers)."""
    record = int8_record(ckpt) if ckpt else None
    if record is not None:  # an INT8 file (quantize.py): its INT8 network, without the head
        net = int8_inference_network(ckpt, record, runtime.conv_impl, features=True)
    else:
        net = feature_network(arch, runtime, ckpt, paths.pretrain_path, paths.n_pretrain_classes)
        net = inference_network(net, runtime.conv_impl, runtime.infer_precision)
    videos = eval_dataset_of(paths, data, arch, evaluation, batch_size, num_workers)
    _, acc = run_evaluation(lambda clips: net(ms.Tensor(clips)).asnumpy(), videos, ignore=evaluation.ignore)
    features, counts = acc.video_scores()
    index = videos[1]
    rows = [(i, vid, index.class_names[label] if label >= 0 else "") for i, (vid, label) in enumerate(index.videos)]
    run_dir = RunDir(paths.result_path, data.dataset).make()
    stem = f"{data.dataset}_{canonical_subset(evaluation.eval_subset)}_features"
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
