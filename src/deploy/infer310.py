"""Ascend-310 style inference in three steps, each reusing the shared code:

1. ``write_clips``: every evaluation window (the eval dataset, same preprocessing) -> one float32 .bin
   of shape [1,3,T,H,W] in ``<out>/data`` + ``<out>/manifest.json`` (video id, label, window per file);
2. the C++ program (ascend310_infer, MindSpore Lite), src.deploy.lite (MindSpore Lite's Python API) or
   src.deploy.mindir_python (MindSpore on the CPU) runs the MINDIR on each .bin (``run_on_clips`` here is
   the Python backends' loop) and writes ``<result_dir>/<clip name>_0.bin`` (float32 probabilities);
3. ``read_results``: manifest + result files -> src.metrics accuracy (the eval line).
"""
import json
from pathlib import Path

import numpy as np

from src.atomic import atomic_output, remove_stale_temps, write_json
from src.data.datasets import check_n_classes, eval_dataset_of
from src.errors import UserError
from src.metrics import compute_accuracy

MANIFEST = "manifest.json"
DATA_DIR = "data"


def clip_name(number):
    return f"clip_{number:07d}"


def result_name(name):
    """Result file of input ``name`` (what ascend310_infer/src/utils.cc writes too)."""
    return f"{name}_0.bin"


def write_clips(cfg, out_dir):
    """Step 1. Returns the manifest dict."""
    out = Path(out_dir)
    data_dir = out / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("clip_*.bin"):  # a re-run must not mix in clips of an earlier run
        old.unlink()
    dataset, index = eval_dataset_of(cfg, cfg.eval_subset)
    clips = []
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        for clip, label, video, window in zip(batch["clip"], batch["label"], batch["video_index"],
                                              batch["window_index"]):
            name = clip_name(len(clips))
            np.ascontiguousarray(clip[None], dtype=np.float32).tofile(data_dir / f"{name}.bin")
            clips.append({"name": name, "video_index": int(video), "window_index": int(window),
                          "label": int(label)})
    manifest = {"shape": [1, cfg.n_input_channels, cfg.sample_duration, cfg.sample_size, cfg.sample_size],
                "dtype": "float32",
                "class_names": list(index.class_names),
                "videos": [[vid, int(label)] for vid, label in index.videos], "views": index.views, "clips": clips}
    write_json(out / MANIFEST, manifest, indent=1)
    print(f"wrote {len(clips)} clips of {len(index.videos)} videos to {data_dir} "
          f"(float32 {'x'.join(str(d) for d in manifest['shape'])} each), manifest {out / MANIFEST}")
    return manifest


def read_manifest(pre_dir):
    path = Path(pre_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path} not found: run preprocess.py first (NEED_PREPROCESS=y)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}): run preprocess.py again") from None


def run_on_clips(data_dir, result_dir, load_predictor):
    """Step 2's loop, shared by the Python backends: every .bin of ``data_dir`` (reshaped to the manifest's
    clip shape) -> ``predict`` -> ``result_dir/<clip name>_0.bin`` (float32), as main.cc does.
    ``load_predictor()`` is called only once the clips are known to exist: loading a model is the slow part."""
    files = sorted(Path(data_dir).glob("*.bin"))
    if not files:
        raise UserError(f"no .bin clips in {data_dir}: run preprocess.py first (NEED_PREPROCESS=y)")
    manifest_path = Path(data_dir).parent / MANIFEST
    shape = read_manifest(manifest_path.parent)["shape"] if manifest_path.is_file() else None
    predict = load_predictor()
    result_dir = Path(result_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(result_dir)  # result files of a killed earlier run
    for path in files:
        clip = np.fromfile(path, dtype=np.float32)
        if shape is not None:
            if clip.size != int(np.prod(shape)):
                raise UserError(f"{path} holds {clip.size} floats, not {'x'.join(map(str, shape))}: "
                                f"run preprocess.py again")
            clip = clip.reshape(shape)
        # no flush per clip: it would cost more than the inference, and a re-run makes the files again
        with atomic_output(result_dir / result_name(path.stem), mkdir=False, fsync=False) as tmp:
            np.ascontiguousarray(predict(clip), dtype=np.float32).tofile(tmp)
    return len(files)


def read_results(pre_dir, result_dir, n_classes, ignore=True):
    """Step 3: Accuracy over the result files listed by the manifest (``n_classes``: the model's outputs)."""
    manifest = read_manifest(pre_dir)
    check_n_classes(n_classes, manifest["class_names"], Path(pre_dir) / MANIFEST)
    probs, missing = [], []
    for clip in manifest["clips"]:
        path = Path(result_dir) / result_name(clip["name"])
        if not path.is_file():
            missing.append(path.name)
            continue
        out = np.fromfile(path, dtype=np.float32)
        if out.size != n_classes:
            raise UserError(f"{path} holds {out.size} scores but --n_classes is {n_classes}: pass the "
                            f"--n_classes the model was exported with")
        probs.append(out)
    if missing:
        raise UserError(f"{len(missing)} of {len(manifest['clips'])} result files are missing in {result_dir} "
                        f"(e.g. {missing[0]}): the inference step did not finish; see infer.log")
    clips = manifest["clips"]
    return compute_accuracy(np.stack(probs) if probs else np.zeros((0, n_classes), np.float32),
                            [c["label"] for c in clips], [c["video_index"] for c in clips],
                            [label for _, label in manifest["videos"]], ignore, manifest.get("views", ""))
