"""Does training drive MindSpore into denormal floats (slow on some CPUs)?

    .venv/bin/python bench/investigations/denormal_check.py [--threads N]

A one-off investigation (its finding: trained weights run as fast as the initial ones; denormal
values are rare), kept runnable.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import workloads  # noqa: E402,F401  (puts the repository on sys.path)


def denormal_check(threads, steps=300, reps=9):
    """Does training drive MindSpore into denormal floats (slow on some CPUs)? Train the demo model
    on one fixed batch until it memorises it (the loss -> 0 regime, where gradients get tiny), then
    time fwd+bwd of the trained and of the initial weights, alternating, and count denormal
    values in parameters, gradients and optimiser moments."""
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
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    denormal_check(args.threads)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    sys.exit(main())
