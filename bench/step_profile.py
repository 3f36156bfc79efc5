"""Where a training step's time goes, by op kind: MindSpore (GRAPH mode, conv_impl auto -> fast) vs
PyTorch (tests/torch_reference.py), same model, batch and optimiser (SGD momentum 0.9, Nesterov).

    .venv/bin/python bench/step_profile.py [--steps N] [--workload demo|r3d18|r3d18-small|all]
    .venv/bin/python bench/step_profile.py --bn-variants   # BN fwd+bwd alone at the model's shapes
    .venv/bin/python bench/step_profile.py --denormal      # does training reach denormal floats?

Per-kind times come from the frameworks' own profilers (mindspore.Profiler CPU op timing,
torch.profiler self CPU time), running both profilers at once while the steps alternate
MindSpore / PyTorch, so load from other processes hits both alike. "overhead" is the profiled step
minus the ops' sum (graph launch, Python, autograd engine). The unprofiled step medians (also
alternating) are printed below each table. Each workload runs in its own subprocess because
mindspore.Profiler is started once per process.

--bn-variants times whole ms.grad calls: each carries a fixed launch cost (~9 ms here), so at small
shapes it measures that cost, not BatchNorm; the kernel-level comparison is the profile's bn rows.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# name: (depth, widen_factor, conv1_t_size, batch, clip C,T,H,W, classes)
WORKLOADS = {
    "r3d18": (18, 1.0, 7, 8, (3, 16, 112, 112), 101),
    "r3d18-small": (18, 1.0, 7, 8, (3, 8, 56, 56), 101),
    "demo": (10, 0.25, 3, 16, (3, 8, 32, 32), 8),
}
KINDS = ("conv", "bn fwd", "bn bwd", "relu", "maxpool", "add", "mean", "dense", "loss", "optimiser", "other",
         "overhead")

# MindSpore kernel type -> kind (forward and backward kernels together)
MS_KINDS = {
    "Custom": "conv", "Conv3D": "conv", "Conv3DBackpropInput": "conv", "Conv3DBackpropFilter": "conv",
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
               ("relu", "relu"), ("threshold", "relu"), ("clamp_min", "relu"), ("max_pool", "maxpool"), ("maxpool", "maxpool"),
               ("mean", "mean"), ("linear", "dense"), ("addmm", "dense"), ("mm", "dense"),
               ("entropy", "loss"), ("softmax", "loss"), ("nll", "loss"), ("aten::add", "add"),
               ("addbackward", "add"))


def build(workload, conv_impl):
    """(MindSpore step fn, PyTorch step fn) for one workload, Nesterov SGD in both."""
    import numpy as np
    import torch
    import mindspore as ms
    from mindspore import Tensor, nn
    from src.models.resnet3d import generate_model
    from torch_reference import TorchResNet3D

    depth, widen, t_size, batch, clip, classes = WORKLOADS[workload]
    net = generate_model(depth, widen_factor=widen, conv1_t_size=t_size, n_classes=classes,
                         conv_impl=conv_impl)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, *clip)).astype(np.float32)
    y_np = rng.integers(0, classes, batch).astype(np.int32)
    x, y = Tensor(x_np), Tensor(y_np)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss),
                               nn.SGD(net.trainable_params(), learning_rate=0.01, momentum=0.9, nesterov=True))
    step.set_train()

    tnet = TorchResNet3D(depth, n_classes=classes, widen_factor=widen, conv1_t_size=t_size).train()
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np).long()
    opt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def torch_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(tx), ty).backward()
        opt.step()

    return (lambda: step(x, y).asnumpy()), torch_step, ms


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
    ms_wall, th_wall = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        ms_fn()
        t1 = time.perf_counter()
        th_fn()
        ms_wall.append(t1 - t0)
        th_wall.append(time.perf_counter() - t1)
    return ms_wall, th_wall

def profile_workload(workload, steps, threads):
    """Profiled per-kind ms per step and unprofiled step medians, MindSpore and PyTorch."""
    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as bench/model_speed.py
    info = setup_context("CPU", "GRAPH", conv_impl="auto")
    ms_fn, th_fn, ms = build(workload, info.conv_impl)
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
    return {"ms": ms_kinds, "torch": th_kinds, "ms_other_types": unknown, "torch_other_ops": th_unknown, "conv_impl": info.conv_impl,
            "ms_step": statistics.median(ms_wall) * 1e3, "torch_step": statistics.median(th_wall) * 1e3}


def print_table(workload, res):
    depth, widen, t_size, batch, clip, classes = WORKLOADS[workload]
    print(f"\n## {workload}: depth {depth}, widen {widen}, batch {batch}x{'x'.join(map(str, clip))}, "
          f"conv={res['conv_impl']} (profiled, ms per step)")
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


def bn_variants(threads, reps=7):
    """BatchNorm3d training-mode fwd+bwd alone, at the shapes the two workloads use: MindSpore's
    nn.BatchNorm3d vs a reduction formulation (autodiff) vs PyTorch, alternating."""
    import numpy as np
    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    setup_context("CPU", "GRAPH", conv_impl="auto")
    import mindspore as ms
    from mindspore import Tensor, nn, ops

    class Formula(nn.Cell):
        def __init__(self, c):
            super().__init__()
            self.gamma = ms.Parameter(Tensor(np.ones(c, np.float32)), name="gamma")
            self.beta = ms.Parameter(Tensor(np.zeros(c, np.float32)), name="beta")

        def construct(self, x):
            c = x.shape[1]
            mean = x.mean((0, 2, 3, 4), keep_dims=True)
            xc = x - mean
            var = (xc * xc).mean((0, 2, 3, 4), keep_dims=True)
            return xc * (self.gamma.reshape(1, c, 1, 1, 1) * ops.rsqrt(var + 1e-5)) + self.beta.reshape(1, c, 1, 1, 1)

    class Probe(nn.Cell):  # sum(bn(x) * dy): its gradient wrt x is bn's backward applied to dy
        def __init__(self, bn):
            super().__init__()
            self.bn = bn

        def construct(self, x, dy):
            return (self.bn(x) * dy).sum()

    def ms_fn(cell, x, dy):
        cell.set_train(True)
        grad = ms.grad(Probe(cell), grad_position=0, weights=cell.trainable_params())

        def run():
            dx, dparams = grad(x, dy)
            dx.asnumpy(), dparams[0].asnumpy()
        return run

    def torch_fn(shape):
        bn = torch.nn.BatchNorm3d(shape[1]).train()
        x = torch.randn(*shape, requires_grad=True)
        dy = torch.randn(*shape)

        def run():
            bn.zero_grad()
            x.grad = None
            bn(x).backward(dy)
        return run

    shapes = [(8, 64, 16, 56, 56), (8, 64, 8, 28, 28), (8, 128, 4, 14, 14), (8, 256, 2, 7, 7),
              (16, 16, 8, 16, 16), (16, 16, 4, 8, 8), (16, 32, 2, 4, 4)]
    print(f"{'BN fwd+bwd shape':<22} {'nn.BN3d':>8} {'formula':>8} {'PyTorch':>8} {'BN3d/pt':>8} {'form/pt':>8}")
    for shape in shapes:
        rng = np.random.default_rng(0)
        x = Tensor(rng.standard_normal(shape).astype(np.float32))
        dy = Tensor(rng.standard_normal(shape).astype(np.float32))
        fns = {"native": ms_fn(nn.BatchNorm3d(shape[1]), x, dy), "formula": ms_fn(Formula(shape[1]), x, dy),
               "torch": torch_fn(shape)}
        times = {k: [] for k in fns}
        for _ in range(2):
            for f in fns.values():
                f()
        for _ in range(reps):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        print(f"{'x'.join(map(str, shape)):<22} {med['native']:8.2f} {med['formula']:8.2f} {med['torch']:8.2f} "
              f"{med['native'] / med['torch']:8.2f} {med['formula'] / med['torch']:8.2f}")


def denormal_check(threads, steps=300, reps=9):
    """Does training drive MindSpore into denormal floats (slow on some CPUs)? Train the demo model
    on one fixed batch until it memorises it (the loss -> 0 regime, where gradients get tiny), then
    time fwd+bwd of the trained and of the initial weights, alternating, and count denormal
    values in parameters, gradients and optimiser moments. Also times ops on all-denormal inputs."""
    import numpy as np
    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    info = setup_context("CPU", "GRAPH", conv_impl="auto")
    import mindspore as ms
    from mindspore import Tensor, nn
    from src.models.resnet3d import generate_model

    tiny = np.finfo(np.float32).tiny  # smallest normal float32

    def denormal_fraction(arrays):
        total = sum(a.size for a in arrays)
        return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < tiny))) for a in arrays) / total, \
            min(float(np.abs(a[a != 0]).min()) for a in arrays if np.any(a != 0))

    def make_net(seed):
        ms.set_seed(seed)
        return generate_model(10, widen_factor=0.25, conv1_t_size=3, n_classes=8, conv_impl=info.conv_impl)

    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 3, 8, 32, 32)).astype(np.float32))
    y = Tensor(rng.integers(0, 8, 16).astype(np.int32))
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    trained, fresh = make_net(1), make_net(1)
    opt = nn.SGD(trained.trainable_params(), learning_rate=0.03, momentum=0.9, nesterov=True,
                 weight_decay=1e-3)
    step = nn.TrainOneStepCell(nn.WithLossCell(trained, loss), opt)
    step.set_train()
    first = float(step(x, y).asnumpy())
    for _ in range(steps - 1):
        last = float(step(x, y).asnumpy())
    print(f"trained the demo model {steps} steps on one batch: loss {first:.3g} -> {last:.3g}")

    timings, grads_of = {}, {}
    for name, net in (("initial", fresh), ("trained", trained)):
        net.set_train(True)
        grads_of[name] = ms.value_and_grad(nn.WithLossCell(net, loss), None, weights=net.trainable_params())
        timings[name] = []
        grads_of[name](x, y)
    for _ in range(reps):
        for name, fn in grads_of.items():
            t0 = time.perf_counter()
            _, g = fn(x, y)
            [a.asnumpy() for a in g]
            timings[name].append(time.perf_counter() - t0)
    g = [a.asnumpy() for a in grads_of["trained"](x, y)[1]]
    frac_g, min_g = denormal_fraction(g)
    frac_p, min_p = denormal_fraction([p.asnumpy() for p in trained.trainable_params()])
    frac_m, min_m = denormal_fraction([m.asnumpy() for m in opt.accum])
    t_init, t_trained = (1e3 * statistics.median(timings[k]) for k in ("initial", "trained"))
    print(f"fwd+bwd median: initial weights {t_init:.1f} ms, trained weights {t_trained:.1f} ms, "
          f"ratio {t_trained / t_init:.2f}")
    print(f"denormal fraction (smallest |nonzero|): gradients {frac_g:.2e} ({min_g:.1e}), parameters "
          f"{frac_p:.2e} ({min_p:.1e}), momenta {frac_m:.2e} ({min_m:.1e})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="all", choices=["all", *WORKLOADS])
    parser.add_argument("--steps", type=int, default=4, help="profiled (and unprofiled) steps per framework")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--bn-variants", action="store_true", help="time BatchNorm fwd+bwd variants alone")
    parser.add_argument("--denormal", action="store_true", help="check training for denormal floats")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bn_variants:
        bn_variants(args.threads)
        return 0
    if args.denormal:
        denormal_check(args.threads)
        return 0
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
