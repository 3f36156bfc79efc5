"""Ascend-310 inference of an exported MINDIR in a work folder: preprocess.py -> a backend -> postprocess.py
(what scripts/run_infer_310.sh runs once it has checked its arguments).

python -m src.launch.run_infer310 --mindir_path=M --dataset=D --config_path=C --video_path=V --annotation_path=A
    [--need_preprocess=y|n] [--device_id=0] [--backend=ascend310|lite-python|mindir-python] [--work_dir=.]
    [-- --key=value ...]       (the options after -- go to preprocess.py and postprocess.py)
Backends, all on the same .bin files, writing the same result files:
  ascend310      ascend310_infer/out/main (MindSpore Lite C++ API), built first (build.log; LITE_HOME, ASCEND_HOME)
  lite-python    python -m src.deploy.lite (MindSpore Lite's Python API; needs the mindspore_lite wheel)
  mindir-python  python -m src.deploy.mindir_python (MindSpore on the CPU; no Ascend needed, no timing file)
The work folder gets preprocess_Result/, result_Files/, time_Result/, infer.log and acc.log (postprocess's output).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from src.launch.processes import LaunchError, StepFailed, check_step, tail, tee
from src.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("ascend310", "lite-python", "mindir-python")
INFER_LOG_TAIL = 20  # lines of infer.log shown when the inference fails


class Work:
    """The work folder and the seed's names in it."""

    def __init__(self, path):
        self.path = Path(path).resolve()
        self.pre = self.path / "preprocess_Result"
        self.data = self.pre / "data"
        self.results = self.path / "result_Files"
        self.times = self.path / "time_Result"
        self.infer_log = self.path / "infer.log"

    def require_data(self):
        if not self.data.is_dir():
            raise LaunchError(f"{self.data} missing: run with NEED_PREPROCESS=y")


def inference_command(backend: str, mindir, work: Work, device_id: int) -> list:
    """The backend's command on work's .bin clips."""
    io = [f"--mindir_path={mindir}", f"--dataset_path={work.data}", f"--result_path={work.results}"]
    if backend == "ascend310":
        return [str(ROOT / "ascend310_infer" / "out" / "main"), *io, f"--time_path={work.times}",
                f"--device_id={device_id}"]
    if backend == "lite-python":
        return [sys.executable, "-m", "src.deploy.lite", *io, f"--time_path={work.times}", f"--device_id={device_id}"]
    # no timing file: a CPU run says nothing about a 310
    return [sys.executable, "-m", "src.deploy.mindir_python", *io, f"--device_id={device_id}"]


def ascend310_env(env: dict) -> dict:
    """``env`` with the folders MindSpore Lite loads its Ascend plugins and MINDIR converter libraries from
    (and the Ascend toolkit's and driver's, where installed) in front of LD_LIBRARY_PATH."""
    if not env.get("LITE_HOME"):
        raise LaunchError("LITE_HOME is not set: the unpacked MindSpore Lite package (see ascend310_infer/build.sh)")
    lite = os.path.realpath(env["LITE_HOME"])
    folders = [f"{lite}/runtime/lib", f"{lite}/runtime/third_party/dnnl", f"{lite}/tools/converter/lib"]
    ascend = env.get("ASCEND_HOME") or "/usr/local/Ascend"
    if os.path.isdir(f"{ascend}/ascend-toolkit"):
        folders = [f"{ascend}/ascend-toolkit/latest/lib64", f"{ascend}/driver/lib64", *folders]
    return {**env, "LD_LIBRARY_PATH": ":".join([*folders, env.get("LD_LIBRARY_PATH", "")])}


def prepare_backend(backend: str, work: Work) -> None:
    """The backend must be usable before the (long) preprocessing starts."""
    if backend == "ascend310":
        log = work.path / "build.log"
        print(f"building ascend310_infer (log: {log})", flush=True)
        with open(log, "wb") as out:
            code = subprocess.run(["bash", "build.sh"], cwd=ROOT / "ascend310_infer", stdout=out,
                                  stderr=subprocess.STDOUT).returncode
        if code:
            sys.stderr.write(log.read_text(errors="replace"))
            raise LaunchError("building ascend310_infer failed (see above); without an Ascend 310 use "
                              "--backend=mindir-python")
    elif backend == "lite-python":  # a missing wheel prints its one error line
        check_step(subprocess.run([sys.executable, "-m", "src.deploy.lite", "--check"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL).returncode)


def infer(args, work: Work) -> None:
    shutil.rmtree(work.results, ignore_errors=True)
    shutil.rmtree(work.times, ignore_errors=True)
    work.results.mkdir(parents=True)
    work.times.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if args.backend == "ascend310":
        env = ascend310_env(env)
    print(f"inference ({args.backend}) -> {work.results} (log: {work.infer_log})", flush=True)
    with open(work.infer_log, "wb") as log:
        code = subprocess.run(inference_command(args.backend, args.mindir_path, work, args.device_id), cwd=work.path,
                              env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code:
        for line in tail(work.infer_log, INFER_LOG_TAIL):
            print(line, file=sys.stderr)
        raise LaunchError(f"inference failed, see {work.infer_log}")


def run(args, extra: list) -> int:
    work = Work(args.work_dir)
    if args.need_preprocess == "n":
        work.require_data()
    print(f"mindir: {args.mindir_path}  dataset: {args.dataset}  video path: {args.video_path}  "
          f"annotation: {args.annotation_path}")
    print(f"need preprocess: {args.need_preprocess}  device id: {args.device_id}  backend: {args.backend}", flush=True)
    prepare_backend(args.backend, work)
    model = [f"--config_path={args.config_path}", f"--dataset={args.dataset}", f"--mindir_path={args.mindir_path}"]
    if args.need_preprocess == "y":
        print(f"preprocessing -> {work.pre}", flush=True)
        shutil.rmtree(work.pre, ignore_errors=True)
        check_step(subprocess.run([sys.executable, str(ROOT / "preprocess.py"), *model,
                                   f"--video_path={args.video_path}", f"--annotation_path={args.annotation_path}",
                                   f"--output_path={work.pre}", *extra], cwd=work.path).returncode)
    work.require_data()
    infer(args, work)
    return tee([sys.executable, str(ROOT / "postprocess.py"), *model, f"--pre_path={work.pre}",
                f"--result_dir={work.results}", *extra], work.path / "acc.log", merge_stderr=True, cwd=work.path)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m src.launch.run_infer310",
                                     description="Ascend-310 style inference: preprocess -> backend -> postprocess.")
    for name in ("mindir_path", "dataset", "config_path", "video_path", "annotation_path"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--need_preprocess", choices=("y", "n"), default="y",
                        help="n: reuse the work folder's preprocess_Result")
    parser.add_argument("--device_id", type=int, default=0)
    parser.add_argument("--backend", choices=BACKENDS, default="ascend310")
    parser.add_argument("--work_dir", default=".", help="where the results go (default: the current folder)")
    return parser


def main(argv=None) -> int:
    argv, extra = sys.argv[1:] if argv is None else list(argv), []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = _parser().parse_args(argv)
    try:
        return run(args, extra)
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except StepFailed as failed:
        return failed.status
    except KeyboardInterrupt:  # the step in the foreground had the Ctrl-C too
        return 130


if __name__ == "__main__":
    sys.exit(main())
