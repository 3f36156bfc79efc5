"""Whole-model speed, MindSpore vs PyTorch (tests/torch_reference.py), in one process, same threads.

    .venv/bin/python bench/model_speed.py [--quick] [--threads N]

Runs alternate between the frameworks and medians are reported, because other processes may share
the cores. Configurations: "fast" (the default, conv_impl auto -> our oneDNN op, uncapped) in this
process; "capped" (native nn.Conv3d, oneDNN capped at AVX2) in a subprocess, since the cap must be
set before MindSpore builds its first oneDNN kernel and it slows the fast op; "native" uncapped
(oneDNN's reference kernel, 50-65x PyTorch's time, PORTING_NOTES §1) is skipped with that estimate.
The last line is `train_speed_ratio_vs_torch=... infer_time_ratio_vs_torch=...` for the default.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# (name, kind, depth, batch, clip C,T,H,W)
WORKLOADS = [
    ("r3d18 train", "train", 18, 8, (3, 16, 112, 112)),
    ("r3d10 train", "train", 10, 8, (3, 8, 56, 56)),
    ("r3d50 infer", "infer", 50, 1, (3, 16, 112, 112)),
]
N_CLASSES = 101


def ms_runner(kind, depth, batch, clip, conv_impl):
    import numpy as np
    import mindspore as ms
    from mindspore import Tensor, nn
    from src.models.resnet3d import generate_model

    net = generate_model(depth, n_classes=N_CLASSES, conv_impl=conv_impl)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((batch, *clip)).astype(np.float32))
    if kind == "infer":
        net.set_train(False)
        return lambda: net(x).asnumpy()
    y = Tensor(rng.integers(0, N_CLASSES, batch).astype(np.int32))
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss),
                               nn.SGD(net.trainable_params(), learning_rate=0.01, momentum=0.9))
    step.set_train()
    return lambda: step(x, y).asnumpy()


def torch_runner(kind, depth, batch, clip):
    import torch
    from torch_reference import TorchResNet3D

    net = TorchResNet3D(depth, n_classes=N_CLASSES)
    x = torch.randn(batch, *clip)
    if kind == "infer":
        net.eval()

        def infer():
            with torch.no_grad():
                return net(x)
        return infer
    net.train()
    y = torch.randint(0, N_CLASSES, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def train():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return train


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(config, threads, reps, workloads):
    """{workload: {"ms": median s, "torch": median s}} for one MindSpore configuration."""
    import statistics

    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    info = setup_context("CPU", "GRAPH", conv_impl="native" if config == "capped" else "auto",
                         cpu_isa_cap="on" if config == "capped" else "auto")
    print(f"# {config}: {info.describe()}, {threads} threads", file=sys.stderr)
    out = {}
    for name, kind, depth, batch, clip in workloads:
        ms_fn = ms_runner(kind, depth, batch, clip, info.conv_impl)
        th_fn = torch_runner(kind, depth, batch, clip)
        ms_fn(), th_fn()  # compile / warm up
        ms_fn(), th_fn()
        ms_t, th_t = [], []
        for _ in range(reps[kind]):
            ms_t.append(timed(ms_fn))
            th_t.append(timed(th_fn))
        out[name] = {"ms": statistics.median(ms_t), "torch": statistics.median(th_t),
                     "batch": batch, "kind": kind}
        print(f"#   {name}: ms {out[name]['ms']:.3f}s torch {out[name]['torch']:.3f}s", file=sys.stderr)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip-capped", action="store_true")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args(argv)
    reps = {"train": 3, "infer": 5} if args.quick else {"train": 5, "infer": 9}

    if args.config:  # child: one configuration, JSON on stdout
        print(json.dumps(measure(args.config, args.threads, reps, WORKLOADS)))
        return 0

    results = {"fast": measure("fast", args.threads, reps, WORKLOADS)}
    if not args.skip_capped:
        env = dict(os.environ, GLOG_v="3", OMP_NUM_THREADS=str(args.threads))
        cmd = [sys.executable, __file__, "--config", "capped", "--threads", str(args.threads)]
        done = subprocess.run(cmd + (["--quick"] if args.quick else []), capture_output=True,
                              text=True, env=env, cwd=ROOT)
        sys.stderr.write(done.stderr[-2000:] if done.returncode else "")
        if done.returncode == 0:
            results["capped"] = json.loads(done.stdout.strip().splitlines()[-1])

    print(f"{'workload':<13} {'config':<8} {'MindSpore':>10} {'PyTorch':>9} {'ratio':>7}  (train: clips/s "
          f"ratio MS/torch, higher is better; infer: time ratio MS/torch, lower is better)")
    for name, _, _, _, _ in WORKLOADS:
        for config, res in results.items():
            r = res[name]
            if r["kind"] == "train":
                ms_v, th_v = r["batch"] / r["ms"], r["batch"] / r["torch"]
                print(f"{name:<13} {config:<8} {ms_v:>7.2f}c/s {th_v:>6.2f}c/s {ms_v / th_v:>7.2f}")
            else:
                print(f"{name:<13} {config:<8} {r['ms']:>9.3f}s {r['torch']:>8.3f}s {r['ms'] / r['torch']:>7.2f}")
        print(f"{name:<13} {'native':<8} {'skipped: oneDNN reference kernel, ~50-65x PyTorch time':>40}")
    fast = results["fast"]
    train = fast["r3d18 train"]
    print(f"train_speed_ratio_vs_torch={train['torch'] / train['ms']:.2f} "
          f"infer_time_ratio_vs_torch={fast['r3d50 infer']['ms'] / fast['r3d50 infer']['torch']:.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    sys.exit(main())
