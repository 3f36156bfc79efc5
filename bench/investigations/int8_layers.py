"""Where batch-1 INT8 time goes: our INT8 network against OpenVINO on NNCF's INT8 model, convolution by
convolution, at 1 and 2 threads (issue 30).

    .venv/bin/python bench/investigations/int8_layers.py [--workload "r3d50 infer b1"] [--calls 10]

For each thread count a child process (OMP_NUM_THREADS and OpenVINO's INFERENCE_NUM_THREADS set) builds the
bench's random-weight workload, calibrates both INT8 models on the bench's 8 clips (bench/int8.py), then times
``--calls`` calls of each (wall, fastest and median) and takes each convolution's median time: ours from
oneDNN's verbose output (dnnl_set_verbose(2) around the timed calls: each primitive's execution time), OpenVINO's
from its PERF_COUNT profiling. It prints per convolution (in execution order; our network and OpenVINO's may
order a block's downsample and first convolution differently) the four times, then the sums: convolutions vs
the whole call, for both. The difference between a network's wall time and its convolutions' sum is what runs
outside them (ours: the stem's quantization, the max-pool, the op's work around each unit, MindSpore's call and
the head).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import int8 as i8  # noqa: E402
import workloads as wl  # noqa: E402


def timed(fn, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2]


def ours(w, net, calls):
    """(fastest, median wall s, [median ms per convolution], [geometry]) of our INT8 network."""
    import ctypes

    import mindspore
    import numpy as np

    network = i8.quantized(w, net, i8.calibration_clips(w), tempfile.mkdtemp())
    infer = i8.ms_int8_infer(w, network, "fast")
    for _ in range(5):
        infer()
    wall = timed(infer, calls)
    lib = ctypes.CDLL(str(Path(mindspore.__file__).parent / "lib" / "libdnnl.so.3"))
    with tempfile.TemporaryFile("w+") as log:  # oneDNN prints through C's stdout: point file descriptor 1 here
        saved = os.dup(1)
        sys.stdout.flush()
        os.dup2(log.fileno(), 1)
        try:
            lib.dnnl_set_verbose(2)
            for _ in range(calls):
                infer()
            lib.dnnl_set_verbose(0)
        finally:
            ctypes.CDLL(None).fflush(None)  # C's buffered stdout, into the file before fd 1 goes back
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        text = log.read()
    rows = [line.split(",") for line in text.splitlines() if ",exec," in line and ",convolution," in line]
    per_call = len(rows) // calls
    times = np.median(np.array([float(r[-1]) for r in rows[:per_call * calls]]).reshape(calls, per_call), axis=0)
    geometry = [re.sub(r"d[dhw]0", "", r[-2].replace("mb1_", "")) for r in rows[:per_call]]
    return wall, list(times), geometry


def openvino(w, net, calls, threads):
    """(fastest, median wall s, [median ms per convolution]) of OpenVINO on NNCF's INT8 model (the bench's)."""
    import numpy as np

    infer = i8.openvino_int8_infer(w, net, threads, profile=True)
    for _ in range(5):
        infer()
    wall = timed(infer, calls)
    runs = []
    for _ in range(calls):
        infer()
        runs.append([p.real_time.total_seconds() * 1e3 for p in infer.request.get_profiling_info()
                     if p.node_type == "Convolution"])
    return wall, list(np.median(np.array(runs), axis=0))


def child(name, calls, threads):
    from src.runtime import setup_context

    setup_context("CPU", "GRAPH", conv_impl="auto", infer_precision="fp32")
    w = next(x for x in wl.SPEED_WORKLOADS if x.name == name)
    _, net = wl.ms_infer(w, "fast")
    our_wall, our_convs, geometry = ours(w, net, calls)
    ov_wall, ov_convs = openvino(w, net, calls, threads)
    print(json.dumps({"ours": [our_wall, our_convs], "ov": [ov_wall, ov_convs], "geometry": geometry}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="r3d50 infer b1")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.workload, args.calls, args.child)
    results = {}
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), GLOG_v="3")
        done = subprocess.run([sys.executable, __file__, "--workload", args.workload, "--calls", str(args.calls),
                               "--child", str(threads)], env=env, capture_output=True, text=True, cwd=wl.ROOT)
        if done.returncode:
            sys.exit(f"error: the {threads}-thread child failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        results[threads] = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = results[1], results[2]
    print(f"{args.workload}, ms: ours 1T, 2T | OpenVINO INT8 1T, 2T | our geometry")
    for i, geometry in enumerate(two["geometry"]):
        cells = [r[k][1][i] if i < len(r[k][1]) else float("nan") for r in (one, two) for k in ("ours",)]
        cells += [r["ov"][1][i] if i < len(r["ov"][1]) else float("nan") for r in (one, two)]
        print(f"{cells[0]:7.3f} {cells[1]:7.3f} | {cells[2]:7.3f} {cells[3]:7.3f} | {geometry}")
    for threads, r in results.items():
        for k, label in (("ours", "ours"), ("ov", "OpenVINO INT8")):
            (fastest, median), convs = r[k]
            print(f"{threads} thread(s), {label}: convolutions {sum(convs):.2f} ms, whole call fastest "
                  f"{fastest * 1e3:.2f} ms / median {median * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
