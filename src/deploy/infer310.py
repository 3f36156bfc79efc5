"""Ascend-310 style inference in three steps, each reusing the shared code:

1. ``write_clips``: every evaluation window (the eval dataset, same preprocessing) -> one float32 .bin
   of shape [1,3,T,H,W] in ``<out>/data`` + ``<out>/manifest.json`` (video id, label, window per file);
2. the C++ program (ascend310_infer, MindSpore Lite), src.deploy.lite (MindSpore Lite's Python API) or
   src.deploy.mindir_python (MindSpore on the CPU) runs the MINDIR on each .bin (``inference_command``: each
   backend's command, ``ascend310_env`` the C++ program's libraries; ``run_on_clips``: the Python backends' loop)
   and writes ``<result_dir>/<clip name>_0.bin`` (float32 probabilities);
3. ``read_results``: manifest + result files -> src.metrics accuracy (the eval line).
"""
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from src.atomic import atomic_output, remove_stale_temps, writable_dir, write_json
from src.config import REPO_ROOT
from src.data.datasets import check_n_classes, eval_dataset_of
from src.errors import UserError
from src.logs import out as out_line
from src.metrics import compute_accuracy

MANIFEST = "manifest.json"
DATA_DIR = "data"


def clip_name(number):
    return f"clip_{number:07d}"


def result_name(name):
    """Result file of input ``name`` (what ascend310_infer/src/utils.cc writes too)."""
    return f"{name}_0.bin"


def write_clips(out_dir, *, paths, data, arch, evaluation, batch_size, num_workers):
    """Step 1: the windows of the annotation's ``evaluation.eval_subset`` as eval.py makes them (the config's
    sections, eval_batch_size, num_workers). Returns the manifest dict."""
    out = Path(out_dir)
    data_dir = writable_dir(out / DATA_DIR, "clips are written there: pass a writable --output_path")
    for old in data_dir.glob("clip_*.bin"):  # a re-run must not mix in clips of an earlier run
        old.unlink()
    dataset, index = eval_dataset_of(paths, data, arch, evaluation, batch_size, num_workers)
    clips = []
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        for clip, label, video, window in zip(batch["clip"], batch["label"], batch["video_index"],
                                              batch["window_index"]):
            name = clip_name(len(clips))
            np.ascontiguousarray(clip[None], dtype=np.float32).tofile(data_dir / f"{name}.bin")
            clips.append({"name": name, "video_index": int(video), "window_index": int(window),
                          "label": int(label)})
    manifest = {"shape": [1, arch.n_input_channels, data.sample_duration, data.sample_size, data.sample_size],
                "dtype": "float32",
                "class_names": list(index.class_names),
                "videos": [[vid, int(label)] for vid, label in index.videos], "views": index.views, "clips": clips}
    write_json(out / MANIFEST, manifest, indent=1)
    out_line.info(f"wrote {len(clips)} clips of {len(index.videos)} videos to {data_dir} "
                  f"(float32 {'x'.join(str(d) for d in manifest['shape'])} each), manifest {out / MANIFEST}")
    return manifest


RERUN = "run preprocess.py again (NEED_PREPROCESS=y)"
UNLABELLED = "the accuracy needs labelled videos: run preprocess.py again on a labelled subset (--eval_subset)"
_KINDS = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def shown(value, limit=60):
    """A manifest value as it may be echoed to a terminal: repr (control characters escaped), shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _get(path, container, key, kind, where=""):
    """``container[key]``, which must exist and be a ``kind`` (an integer is never a boolean)."""
    name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key
    if key not in (range(len(container)) if isinstance(container, list) else container):
        raise UserError(f"{path}: {name}: missing; {RERUN}")
    value = container[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{path}: {name}: {shown(value)} is not {_KINDS[kind]}; {RERUN}")
    return value


def _index(path, container, key, where, count, what, fix=RERUN):
    """``container[key]``: an integer from 0 to ``count`` - 1."""
    value = _get(path, container, key, int, where)
    if not 0 <= value < count:
        name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
        raise UserError(f"{path}: {name}: {value} is not {what} ({f'0 to {count - 1}' if count else 'none'}); {fix}")
    return value


def check_clip_shape(manifest, path):
    """What inference reads of the manifest: an object with the clips' shape (and dtype)."""
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: (top level): {shown(manifest)} is not an object; {RERUN}")
    shape = _get(path, manifest, "shape", list)
    if len(shape) != 5 or not all(type(d) is int and d > 0 for d in shape):
        raise UserError(f"{path}: shape: {shown(shape)} is not 5 positive integers [1, C, T, H, W]; {RERUN}")
    if manifest.get("dtype", "float32") != "float32":
        raise UserError(f"{path}: dtype: {shown(manifest['dtype'])} is not 'float32'; {RERUN}")
    return manifest


def check_manifest(manifest, path):
    """The whole manifest, before any number is read from it: the keys preprocess.py writes and their types, every
    label a class of class_names (the same for a clip as for its video), every video_index one of videos, every
    clip name a plain file name, used once."""
    check_clip_shape(manifest, path)
    if "views" in manifest:
        _get(path, manifest, "views", str)
    names, videos, clips = (_get(path, manifest, key, list) for key in ("class_names", "videos", "clips"))
    for i in range(len(names)):
        _get(path, names, i, str, "class_names")
    labels = []
    for i in range(len(videos)):
        _get(path, _get(path, videos, i, list, "videos"), 0, str, f"videos[{i}]")
        labels.append(_index(path, videos[i], 1, f"videos[{i}]", len(names), "a class of class_names", UNLABELLED))
    seen = {}
    for i in range(len(clips)):
        where, clip = f"clips[{i}]", _get(path, clips, i, dict, "clips")
        name = _get(path, clip, "name", str, where)
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name) or name in seen:
            problem = f"is the name of {seen[name]} too" if name in seen else "is not a plain file name"
            raise UserError(f"{path}: {where}.name: {shown(name)} {problem}; {RERUN}")
        seen[name] = where
        video = _index(path, clip, "video_index", where, len(videos), "a video of videos")
        if _get(path, clip, "window_index", int, where) < 0:
            raise UserError(f"{path}: {where}.window_index: {clip['window_index']} is negative; {RERUN}")
        if _index(path, clip, "label", where, len(names), "a class of class_names", UNLABELLED) != labels[video]:
            raise UserError(f"{path}: {where}.label: {clip['label']} is not the label of its video "
                            f"(videos[{video}]: {labels[video]}); {RERUN}")
    if not clips:
        raise UserError(f"{path}: clips: empty, no clip to score; {RERUN}")
    return manifest


def read_manifest(pre_dir, whole=True):
    """``<pre_dir>/manifest.json``, checked whole (``check_manifest``) or, for inference, its clip shape only (an
    unlabelled subset can be run, not scored)."""
    path = Path(pre_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path} not found: run preprocess.py first (NEED_PREPROCESS=y)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # not JSON, or not UTF-8
        raise UserError(f"{path}: not valid JSON ({err}); {RERUN}") from None
    return check_manifest(manifest, path) if whole else check_clip_shape(manifest, path)


def run_on_clips(data_dir, result_dir, load_predictor):
    """Step 2's loop, shared by the Python backends: every .bin of ``data_dir`` (reshaped to the manifest's
    clip shape) -> ``predict`` -> ``result_dir/<clip name>_0.bin`` (float32), as main.cc does.
    ``load_predictor()`` is called only once the clips are known to exist: loading a model is the slow part."""
    files = sorted(Path(data_dir).glob("*.bin"))
    if not files:
        raise UserError(f"no .bin clips in {data_dir}: run preprocess.py first (NEED_PREPROCESS=y)")
    manifest_path = Path(data_dir).parent / MANIFEST
    shape = read_manifest(manifest_path.parent, whole=False)["shape"] if manifest_path.is_file() else None
    predict = load_predictor()
    result_dir = writable_dir(result_dir, "results are written there: pass a writable result folder")
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


# scripts/run_infer_310.sh's work folder (src/launch/run_infer310.py runs the steps there): step 1 writes PRE_DIR,
# step 2 RESULTS_DIR and, where the backend times its runs, TIMES_DIR
PRE_DIR, RESULTS_DIR, TIMES_DIR = "preprocess_Result", "result_Files", "time_Result"


def inference_command(backend, mindir, work, device_id) -> list:
    """Step 2: the backend's command on the .bin clips of the work folder ``work``."""
    io = [f"--mindir_path={mindir}", f"--dataset_path={work / PRE_DIR / DATA_DIR}",
          f"--result_path={work / RESULTS_DIR}"]
    timing = [f"--time_path={work / TIMES_DIR}", f"--device_id={device_id}"]
    if backend == "ascend310":
        return [str(REPO_ROOT / "ascend310_infer" / "out" / "main"), *io, *timing]
    if backend == "lite-python":
        return [sys.executable, "-m", "src.deploy.lite", *io, *timing]
    return [sys.executable, "-m", "src.deploy.mindir_python", *io, f"--device_id={device_id}"]  # times nothing


def ascend310_env(env) -> dict:
    """``env`` with the folders MindSpore Lite loads its Ascend plugins and MINDIR converter libraries from
    (and the Ascend toolkit's and driver's, where installed) in front of LD_LIBRARY_PATH."""
    if not env.get("LITE_HOME"):
        raise UserError("LITE_HOME is not set: the unpacked MindSpore Lite package (see ascend310_infer/build.sh)")
    lite = os.path.realpath(env["LITE_HOME"])
    folders = [f"{lite}/runtime/lib", f"{lite}/runtime/third_party/dnnl", f"{lite}/tools/converter/lib"]
    ascend = env.get("ASCEND_HOME") or "/usr/local/Ascend"
    if os.path.isdir(f"{ascend}/ascend-toolkit"):
        folders = [f"{ascend}/ascend-toolkit/latest/lib64", f"{ascend}/driver/lib64", *folders]
    return {**env, "LD_LIBRARY_PATH": ":".join([*folders, env.get("LD_LIBRARY_PATH", "")])}
