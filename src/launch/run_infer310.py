"""scripts/run_infer_310.sh's steps in the current folder (the script describes the backends and what each
writes): the backend made usable, preprocess.py, the backend's run into infer.log, postprocess.py teed into acc.log.
``launch([MINDIR, DATASET, CONFIG, VIDEO, ANNOTATION, NEED_PREPROCESS, DEVICE_ID, BACKEND, --key=value...], env)``;
the options go to preprocess.py and postprocess.py. A failed step is told once and leaves no empty result folder.
The backends' commands and libraries are src.deploy.infer310's.
"""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from src.deploy.infer310 import DATA_DIR, PRE_DIR, RESULTS_DIR, TIMES_DIR, ascend310_env, inference_command
from src.errors import UserError
from src.launch.processes import ROOT, check_step, run_logged, run_step, tee


def launch(argv, env) -> int:
    mindir, dataset, config, video, annotation, need_preprocess, device_id, backend, *extra = argv
    work = Path.cwd()
    pre, results, times = work / PRE_DIR, work / RESULTS_DIR, work / TIMES_DIR
    if need_preprocess == "n" and not (pre / DATA_DIR).is_dir():
        raise UserError(f"{pre / DATA_DIR} missing: run with NEED_PREPROCESS=y")
    print(f"mindir: {mindir}  dataset: {dataset}  video path: {video}  annotation: {annotation}")
    print(f"need preprocess: {need_preprocess}  device id: {device_id}  backend: {backend}", flush=True)
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    if backend == "ascend310":  # the backend usable before the long preprocessing
        print(f"building ascend310_infer (log: {work / 'build.log'})", flush=True)
        run_logged("ascend310_infer/build.sh", ["bash", "build.sh"], work / "build.log", cwd=ROOT / "ascend310_infer")
        env = ascend310_env(env)
    elif backend == "lite-python":  # a missing wheel prints its one error line
        run_step(sys.executable, "-m", "src.deploy.lite", "--check", cwd=ROOT, stdout=subprocess.DEVNULL)
    model = [f"--config_path={config}", f"--dataset={dataset}", f"--mindir_path={mindir}"]
    if need_preprocess == "y":
        print(f"preprocessing -> {pre}", flush=True)
        shutil.rmtree(pre, ignore_errors=True)
        run_step(sys.executable, ROOT / "preprocess.py", *model, f"--video_path={video}",
                 f"--annotation_path={annotation}", f"--output_path={pre}", *extra)
    folders = [results] + ([times] if backend != "mindir-python" else [])
    for folder in (results, times):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in folders:
        folder.mkdir(parents=True)
    print(f"inference ({backend}) -> {results} (log: {work / 'infer.log'})", flush=True)
    try:
        run_logged("inference", inference_command(backend, mindir, work, device_id), work / "infer.log", env=env)
    finally:
        for folder in folders:  # only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()
    check_step(tee([sys.executable, str(ROOT / "postprocess.py"), *model, f"--pre_path={pre}",
                    f"--result_dir={results}", *extra], work / "acc.log", merge_stderr=True))
    return 0
