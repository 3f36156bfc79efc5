"""INT8 conv units (src/ops/int8_conv3d.py) against the FP32 fused op (src/ops/fused_conv3d.py, as the FP32
inference network runs it: float32 NCDHW) on every convolution geometry of r3d50 at batch 1 (1 x 3 x 16 x 112 x
112 clips), one op at a time: a quick speed check, not a test.

    .venv/bin/python bench/investigations/int8_conv.py [--reps 30] [--cpu-time]

Each geometry: both ops built on random weights (the INT8 unit u8 in / u8 out, the stem float32 clips in, the
residual units u8 + ReLU, the last unit float32 out), warmed up, then timed alternately (PyNative, MindSpore's
call overhead included in both). Prints the CPU's INT8 flags, per geometry the two times, their ratio, the ratio
of the medians and oneDNN's INT8 kernel, and the r3d50 total (each geometry times its count in the network).
The times are the fastest of ``--reps`` calls: the 2-core machines this runs on are shared, and the fastest
call is the one least slowed by other processes. Under heavy load even that is not enough (a 2-thread OpenMP
team waits at each barrier for a thread that lost its core): ``--cpu-time`` runs one thread (OMP_NUM_THREADS=1)
and times the process's CPU seconds per call instead, which other processes barely change.
Both run in PyNative, where MindSpore's own threads take a core at times: with 2 threads a unit may run at its
1-thread speed, and CPU time counts those threads too. For the network as it runs (GRAPH mode, the trunk as one
op) against OpenVINO layer by layer: bench/investigations/int8_layers.py.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# r3d50's convolutions at 1 x 3 x 16 x 112 x 112: (name, count, in ch, out ch, kernel, stride, input D, H, W,
# kind); kind: stem (float32 clips), relu, res (residual add + ReLU), ds (downsample, s8 out), last (f32 out)
GEOMETRIES = [
    ("stem 7x7x7", 1, 3, 64, 7, (1, 2, 2), (16, 112, 112), "stem"),
    ("l1 conv1 64", 1, 64, 64, 1, 1, (8, 28, 28), "relu"),
    ("l1 conv1 256", 2, 256, 64, 1, 1, (8, 28, 28), "relu"),
    ("l1 conv2", 3, 64, 64, 3, 1, (8, 28, 28), "relu"),
    ("l1 conv3", 3, 64, 256, 1, 1, (8, 28, 28), "res"),
    ("l1 ds", 1, 64, 256, 1, 1, (8, 28, 28), "ds"),
    ("l2 conv1 b1", 1, 256, 128, 1, 1, (8, 28, 28), "relu"),
    ("l2 conv2 s2", 1, 128, 128, 3, 2, (8, 28, 28), "relu"),
    ("l2 ds", 1, 256, 512, 1, 2, (8, 28, 28), "ds"),
    ("l2 conv1", 3, 512, 128, 1, 1, (4, 14, 14), "relu"),
    ("l2 conv2", 3, 128, 128, 3, 1, (4, 14, 14), "relu"),
    ("l2 conv3", 4, 128, 512, 1, 1, (4, 14, 14), "res"),
    ("l3 conv1 b1", 1, 512, 256, 1, 1, (4, 14, 14), "relu"),
    ("l3 conv2 s2", 1, 256, 256, 3, 2, (4, 14, 14), "relu"),
    ("l3 ds", 1, 512, 1024, 1, 2, (4, 14, 14), "ds"),
    ("l3 conv1", 5, 1024, 256, 1, 1, (2, 7, 7), "relu"),
    ("l3 conv2", 5, 256, 256, 3, 1, (2, 7, 7), "relu"),
    ("l3 conv3", 6, 256, 1024, 1, 1, (2, 7, 7), "res"),
    ("l4 conv1 b1", 1, 1024, 512, 1, 1, (2, 7, 7), "relu"),
    ("l4 conv2 s2", 1, 512, 512, 3, 2, (2, 7, 7), "relu"),
    ("l4 ds", 1, 1024, 2048, 1, 2, (2, 7, 7), "ds"),
    ("l4 conv1", 2, 2048, 512, 1, 1, (1, 4, 4), "relu"),
    ("l4 conv2", 2, 512, 512, 3, 1, (1, 4, 4), "relu"),
    ("l4 conv3", 2, 512, 2048, 1, 1, (1, 4, 4), "res"),
    ("l4 conv3 last", 1, 512, 2048, 1, 1, (1, 4, 4), "last"),
]


def cpu_int8_line():
    from src.ops.isa import bf16_support, cpu_flags, int8_support

    flags = cpu_flags()
    shown = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
             if f in flags]
    return f"CPU flags: {' '.join(shown)}; {int8_support()[1]}; {bf16_support()[1]}; {os.cpu_count()} cpus"


def build(geometry, rng):
    """(int8 cell, its inputs, fp32 cell, its inputs, int8 input shape) of one geometry."""
    import mindspore as ms
    from mindspore import Tensor

    from src.ops.fused_conv3d import FusedConv3d
    from src.ops.int8_conv3d import Int8Conv3d

    _, _, cin, cout, k, stride, size, kind = geometry
    kernel = (7, 7, 7) if kind == "stem" else (k,) * 3
    pad = tuple(x // 2 for x in kernel)
    w = rng.standard_normal((cout, cin, *kernel)).astype(np.float32) / np.sqrt(cin * np.prod(kernel))
    b = rng.standard_normal(cout).astype(np.float32) * 0.1
    wq = rng.integers(-127, 128, w.shape).astype(np.int8)
    ws = np.full(cout, 1e-3, np.float32)
    residual = ("u8", 0.05) if kind in ("res", "last") else None
    int8 = Int8Conv3d(wq, ws, b, stride, pad, in_dtype="f32" if kind == "stem" else "u8", in_scale=0.05,
                      out_dtype={"ds": "s8", "last": "f32"}.get(kind, "u8"), out_scale=0.1,
                      relu=kind != "ds", residual=residual)
    fp32 = FusedConv3d(w, b, stride, pad, relu=kind != "ds", residual=residual is not None)
    x32 = rng.standard_normal((1, cin, *size)).astype(np.float32)
    x8_shape = x32.shape if kind == "stem" else (1, *size, cin)
    x8 = x32 if kind == "stem" else rng.integers(0, 256, x8_shape).astype(np.uint8)
    out8, out32 = int8.probe(x8_shape)[0], fp32.probe(x32.shape)[0]
    args8, args32 = [Tensor(x8)], [Tensor(x32)]
    if residual is not None:
        args8.append(Tensor(rng.integers(0, 256, out8).astype(np.uint8)))
        args32.append(Tensor(rng.standard_normal(out32).astype(np.float32)))
    assert int8(*args8).dtype in (ms.uint8, ms.int8, ms.float32)
    return int8, args8, fp32, args32, x8_shape


CLOCK = [time.perf_counter]


def timed(cell, args):
    start = CLOCK[0]()
    cell(*args).asnumpy()  # waits for the result
    return CLOCK[0]() - start


def measure(geometry, reps, rng):
    int8, args8, fp32, args32, x8_shape = build(geometry, rng)
    for _ in range(2):
        timed(int8, args8), timed(fp32, args32)
    t8, t32 = [], []
    for _ in range(reps):  # alternating: a load change hits both
        t8.append(timed(int8, args8))
        t32.append(timed(fp32, args32))
    return min(t8), min(t32), statistics.median(t8) / statistics.median(t32), int8.implementation(x8_shape)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--cpu-time", action="store_true", help="one thread, CPU seconds (a loaded machine)")
    args = parser.parse_args(argv)
    if args.cpu_time:
        os.environ["OMP_NUM_THREADS"] = "1"  # before MindSpore and the op library load OpenMP
        CLOCK[0] = time.process_time
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    print(cpu_int8_line() + ("; one thread, CPU time" if args.cpu_time else "; wall time"))
    rng = np.random.default_rng(0)
    total8 = total32 = 0.0
    print(f"{'geometry':16s} {'count':>5s} {'int8 ms':>8s} {'fp32 ms':>8s} {'ratio':>6s} {'median':>6s}  kernel")
    for geometry in GEOMETRIES:
        t8, t32, median_ratio, kernel = measure(geometry, args.reps, rng)
        count = geometry[1]
        total8, total32 = total8 + count * t8, total32 + count * t32
        print(f"{geometry[0]:16s} {count:5d} {t8 * 1e3:8.2f} {t32 * 1e3:8.2f} {t8 / t32:6.2f} {median_ratio:6.2f}  "
              f"{kernel}", flush=True)
    print(f"r3d50 b1 convolutions: int8 {total8 * 1e3:.1f} ms, fp32 {total32 * 1e3:.1f} ms, "
          f"int8_vs_fp32={total8 / total32:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
