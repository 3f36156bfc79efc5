"""BatchNorm3d training-mode forward + backward alone, at the shapes of the profiled workloads:
MindSpore's nn.BatchNorm3d vs a reduction formulation (autodiff) vs PyTorch, alternating.

    .venv/bin/python bench/investigations/bn_variants.py [--threads N]

A one-off investigation (its conclusion: BatchNorm is not worth a custom kernel). It times whole
ms.grad calls: each carries a fixed launch cost (~9 ms here), so at small shapes it measures that
cost, not BatchNorm; the kernel-level comparison is bench/step_profile.py's bn rows.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import workloads  # noqa: E402,F401  (puts the repository on sys.path)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    bn_variants(args.threads)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    sys.exit(main())
