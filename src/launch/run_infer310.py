"""scripts/run_infer_310.sh's steps in the current folder (the script describes the backends and what each
writes): the backend made usable, preprocess.py, the backend's run into infer.log, postprocess.py teed into acc.log.
``launch([MINDIR, DATASET, CONFIG, VIDEO, ANNOTATION, NEED_PREPROCESS, DEVICE_ID, BACKEND, --key=value...], env)``;
the options go to preprocess.py and postprocess.py. A failed step is told once and leaves no empty result folder.
"""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from src.errors import UserError
from src.launch.processes import check_step, failure, run_step, tee

ROOT = Path(__file__).resolve().parents[2]
PRE, RESULTS, TIMES = "preprocess_Result", "result_Files", "time_Result"  # in the work folder
DATA = f"{PRE}/data"


def inference_command(backend: str, mindir, work: Path, device_id: int) -> list:
    """The backend's command on the work folder's .bin clips."""
    io = [f"--mindir_path={mindir}", f"--dataset_path={work / DATA}", f"--result_path={work / RESULTS}"]
    timing = [f"--time_path={work / TIMES}", f"--device_id={device_id}"]
    if backend == "ascend310":
        return [str(ROOT / "ascend310_infer" / "out" / "main"), *io, *timing]
    if backend == "lite-python":
        return [sys.executable, "-m", "src.deploy.lite", *io, *timing]
    return [sys.executable, "-m", "src.deploy.mindir_python", *io, f"--device_id={device_id}"]  # times nothing


def ascend310_env(env: dict) -> dict:
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


def run_logged(name: str, command, log: Path, **popen) -> None:
    """``command`` with its output in ``log``; a failure shows the end of the log, then one error line."""
    with open(log, "wb") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **popen).returncode
    if code:
        raise UserError(failure(name, code, log, lines=20))


def launch(argv, env) -> int:
    mindir, dataset, config, video, annotation, need_preprocess, device_id, backend, *extra = argv
    work = Path.cwd()
    if need_preprocess == "n" and not (work / DATA).is_dir():
        raise UserError(f"{work / DATA} missing: run with NEED_PREPROCESS=y")
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
        print(f"preprocessing -> {work / PRE}", flush=True)
        shutil.rmtree(work / PRE, ignore_errors=True)
        run_step(sys.executable, ROOT / "preprocess.py", *model, f"--video_path={video}",
                 f"--annotation_path={annotation}", f"--output_path={work / PRE}", *extra)
    folders = [work / RESULTS] + ([work / TIMES] if backend != "mindir-python" else [])
    for folder in (work / RESULTS, work / TIMES):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in folders:
        folder.mkdir(parents=True)
    print(f"inference ({backend}) -> {work / RESULTS} (log: {work / 'infer.log'})", flush=True)
    try:
        run_logged("inference", inference_command(backend, mindir, work, device_id), work / "infer.log", env=env)
    finally:
        for folder in folders:  # only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()
    check_step(tee([sys.executable, str(ROOT / "postprocess.py"), *model, f"--pre_path={work / PRE}",
                    f"--result_dir={work / RESULTS}", *extra], work / "acc.log", merge_stderr=True))
    return 0
