"""Where a training step's time goes, by op kind: MindSpore (GRAPH mode, conv_impl auto -> fast) vs
PyTorch (tests/helpers/torch_reference.py), same model, batch and optimiser (SGD momentum 0.9, Nesterov).

    .venv/bin/python bench/step_profile.py [--steps N] [--workload demo|r3d18|r3d18-small|all]

Workloads and step builders: bench/workloads.py. One-off investigations (BatchNorm variants in
isolation, denormal floats) are in bench/investigations/.

Per-kind times come from the frameworks' own profilers (mindspore.Profiler CPU op timing,
torch.profiler self CPU time), running both profilers at once while the steps alternate
MindSpore / PyTorch, so load from other processes hits both alike. "overhead" is the profiled step
minus the ops' sum (graph launch, Python, autograd engine). The unprofiled step medians (also
alternating) are printed below each table. Each workload runs in its own subprocess because
mindspore.Profiler is started once per process.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as wl  # noqa: E402

WORKLOADS = wl.PROFILE_WORKLOADS
KINDS = ("conv", "bn fwd", "bn bwd", "relu", "maxpool", "add", "mean", "dense", "loss", "optimiser", "other",
         "overhead")

# MindSpore kernel type -> kind (forward and backward kernels together)
MS_KINDS = {
    "Custom": "conv",  # our Custom ops: the convolutions and the max-pool (the profiler names them alike)
    "Conv3D": "conv", "Conv3DBackpropInput": "conv", "Conv3DBackpropFilter": "conv",
    "BatchNorm": "bn fwd", "BatchNormGrad": "bn bwd",
    "ReLU": "relu", "ReluGrad": "relu",
    "MaxPool3D": "maxpool", "MaxPool3DGrad": "maxpool", "MaxPool3DWithArgmax": "maxpool",
    "Add": "add", "AddN": "add",
    "ReduceMean": "mean", "RealDiv": "mean", "BroadcastTo": "mean", "Tile": "mean",
    "MatMul": "dense", "BiasAdd": "dense", "BiasAddGrad": "dense",
    "SparseSoftmaxCrossEntropyWithLogits": "loss", "SoftmaxCrossEntropyWithLogits": "loss",
    "SGD": "optimiser", "AssignAdd": "optimiser", "Assign": "optimiser",
}
# PyTorch: forward aten op / autograd node name fragment -> kind (first match wins)
TORCH_KINDS = (("conv", "conv"), ("batchnormbackward", "bn bwd"), ("batch_norm_backward", "bn bwd"),
               ("batch_norm", "bn fwd"),
               ("relu", "relu"), ("threshold", "relu"), ("clamp_min", "relu"),
               ("max_pool", "maxpool"), ("maxpool", "maxpool"),
               ("mean", "mean"), ("linear", "dense"), ("addmm", "dense"), ("mm", "dense"),
               ("entropy", "loss"), ("softmax", "loss"), ("nll", "loss"), ("aten::add", "add"),
               ("addbackward", "add"))


def build(workload, conv_impl):
    """(MindSpore step fn, PyTorch step fn) for one workload, Nesterov SGD in both."""
    w = WORKLOADS[workload]
    return wl.ms_train_step(w, conv_impl, nesterov=True), wl.torch_train_step(w, nesterov=True)


def torch_kind(event, parents):
    """Kind of one torch profiler event: optimiser if under Optimizer.step, else by the nearest
    autograd node (backward) or by its own name (forward)."""
    names = [event.name] + parents
    if any(n.startswith("Optimizer.") for n in names):
        return "optimiser"
    node = next((n for n in names if n.startswith("autograd::engine::evaluate_function")), None)
    name = (node.split(":")[-1] if node else event.name).lower()
    for frag, kind in TORCH_KINDS:
        if frag in name:
            return kind
    return "other"


def torch_breakdown(prof, steps):
    out, other = dict.fromkeys(KINDS, 0.0), {}
    for ev in prof.events():
        if ev.device_type.name != "CPU" or ev.name.startswith("ProfilerStep"):
            continue
        parents, p = [], ev.cpu_parent
        while p is not None:
            parents.append(p.name)
            p = p.cpu_parent
        kind = torch_kind(ev, parents)
        out[kind] += ev.self_cpu_time_total / 1e3 / steps  # us -> ms per step
        if kind == "other":
            other[ev.name] = other.get(ev.name, 0.0) + ev.self_cpu_time_total / 1e3 / steps
    return out, {k: v for k, v in other.items() if v >= 0.05}


def ms_breakdown(prof_dir, steps):
    import csv

    out = dict.fromkeys(KINDS, 0.0)
    unknown = {}
    files = list(Path(prof_dir).rglob("cpu_op_type_info_*.csv"))
    if not files:
        raise RuntimeError(f"no cpu_op_type_info csv under {prof_dir}")
    with open(files[0]) as f:
        for row in csv.DictReader(f):
            kind = MS_KINDS.get(row["op_type"], "other")
            if kind == "other":
                unknown[row["op_type"]] = float(row["total_compute_time"]) / steps
            out[kind] += float(row["total_compute_time"]) / steps
    return out, unknown



def alternate(ms_fn, th_fn, steps):
    """Wall times of ``steps`` alternating MindSpore / PyTorch calls: (ms list, torch list)."""
    times = wl.alternate({"ms": ms_fn, "torch": th_fn}, steps)
    return times["ms"], times["torch"]


def profile_workload(workload, steps, threads):
    """Profiled per-kind ms per step and unprofiled step medians, MindSpore and PyTorch."""
    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as bench/model_speed.py
    info = setup_context("CPU", "GRAPH", conv_impl="auto")
    import mindspore as ms

    ms_fn, th_fn = build(workload, info.conv_impl)
    for _ in range(2):  # compile and warm up
        ms_fn(), th_fn()
    ms_wall, th_wall = alternate(ms_fn, th_fn, steps)  # unprofiled

    prof_dir = tempfile.mkdtemp(prefix="ms_prof_")
    mprof = ms.Profiler(output_path=prof_dir)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as tprof:
        ms_prof_wall, th_prof_wall = alternate(ms_fn, th_fn, steps)
    mprof.stop()
    mprof.analyse()
    ms_kinds, unknown = ms_breakdown(prof_dir, steps)
    th_kinds, th_unknown = torch_breakdown(tprof, steps)
    # overhead: the profiled step's mean wall time not covered by any op
    ms_kinds["overhead"] = max(0.0, 1e3 * statistics.mean(ms_prof_wall) - sum(ms_kinds.values()))
    th_kinds["overhead"] = max(0.0, 1e3 * statistics.mean(th_prof_wall) - sum(th_kinds.values()))
    return {"ms": ms_kinds, "torch": th_kinds, "ms_other_types": unknown, "torch_other_ops": th_unknown,
            "conv_impl": info.conv_impl, "ms_step": statistics.median(ms_wall) * 1e3,
            "torch_step": statistics.median(th_wall) * 1e3}


def print_table(workload, res):
    print(f"\n## {workload}: {WORKLOADS[workload].describe()}, conv={res['conv_impl']} (profiled, ms per step)")
    print(f"{'op kind':<11} {'MindSpore':>10} {'PyTorch':>9} {'ratio':>7} {'MS share':>9}")
    ms_total, th_total = sum(res["ms"].values()), sum(res["torch"].values())
    for kind in KINDS:
        m, t = res["ms"][kind], res["torch"][kind]
        ratio = f"{m / t:7.2f}" if t > 1e-3 else f"{'-':>7}"
        print(f"{kind:<11} {m:10.2f} {t:9.2f} {ratio} {100 * m / ms_total:8.1f}%")
    print(f"{'total':<11} {ms_total:10.2f} {th_total:9.2f} {ms_total / th_total:7.2f}")
    print(f"unprofiled step median: MindSpore {res['ms_step']:.1f} ms, PyTorch {res['torch_step']:.1f} ms, "
          f"ratio {res['ms_step'] / res['torch_step']:.2f}")
    if res["ms_other_types"]:
        print("MindSpore 'other' kernels: " + ", ".join(f"{k} {v:.2f}" for k, v in res["ms_other_types"].items()))
    if res["torch_other_ops"]:
        print("PyTorch 'other' ops: " + ", ".join(f"{k} {v:.2f}" for k, v in res["torch_other_ops"].items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="all", choices=["all", *WORKLOADS])
    parser.add_argument("--steps", type=int, default=4, help="profiled (and unprofiled) steps per framework")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one workload, JSON as the last stdout line
        print(json.dumps(profile_workload(args.workload, args.steps, args.threads)))
        return 0
    names = ["r3d18", "demo"] if args.workload == "all" else [args.workload]
    for name in names:
        cmd = [sys.executable, __file__, "--child", "--workload", name, "--steps", str(args.steps),
               "--threads", str(args.threads)]
        with tempfile.TemporaryDirectory() as cwd:  # the profiler writes rank_0/ etc. into the cwd
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                                  env=dict(os.environ, GLOG_v="3"))
        if done.returncode:
            sys.stderr.write(done.stderr[-3000:])
            print(f"\n## {name}: failed (exit {done.returncode})")
            continue
        print_table(name, json.loads(done.stdout.strip().splitlines()[-1]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    sys.exit(main())
