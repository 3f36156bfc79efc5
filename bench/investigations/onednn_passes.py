"""Where a MindSpore training step's oneDNN time goes, primitive by primitive (ONEDNN_VERBOSE).

    .venv/bin/python bench/investigations/onednn_passes.py [--workload r3d18|r3d18-small|demo] [--by-shape]
        [--infer] [--precision fp32|bf16]

Runs two warm-up steps and one measured GRAPH-mode step (conv_impl auto) in a child process with
ONEDNN_VERBOSE=1, then sums oneDNN's own execution times of the measured step by primitive, kernel and
pass (convolution forward / backward data / backward weights, reorders, pooling, BatchNorm).
``--infer``: the r3d18 batch-1 inference call of bench/model_speed.py (the fused inference network, 1 x 3 x
16 x 112 x 112) instead of a training step; ``--precision bf16``: BF16 inference, or BF16 mixed-precision
training (CPUs with native BF16). The kernels depend on the ISA oneDNN runs at: cap
it with ONEDNN_MAX_CPU_ISA=AVX2 (or AVX512_CORE, AVX512_CORE_VNNI, ...), which the child inherits
(docs/performance.md "On each ISA").
``--by-shape`` also lists each convolution geometry. This is how the fast op's layouts were chosen
(src/ops/csrc/conv3d_dnnl.cc: channels-last for the GEMM backward-weights, blocked elsewhere) and how
MindSpore's plain-layout max-pool showed up (now src/ops/csrc/maxpool3d.cc).
Kernels outside oneDNN (our max-pool, MindSpore's own ops) do not appear.
"""
import argparse
import collections
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import workloads as wl  # noqa: E402

MARK = "## measured step"


def child(name, infer=False, precision="fp32"):
    from src.runtime import setup_context

    info = setup_context("CPU", "GRAPH", conv_impl="auto")
    if infer:
        workload = next(w for w in wl.SPEED_WORKLOADS if w.name == "r3d18 infer b1")
        step = wl.ms_infer(workload, info.conv_impl, fused=True, precision=precision)[0]
    else:
        step = wl.ms_train_step(wl.PROFILE_WORKLOADS[name], info.conv_impl, precision=precision)
    step(), step()
    print(MARK, flush=True)
    step()


def summarise(lines, by_shape):
    totals, counts, shapes = collections.Counter(), collections.Counter(), collections.Counter()
    for line in lines:
        f = line.split(",")
        if len(f) < 10 or f[2] != "primitive" or f[3] != "exec":
            continue
        ms = float(f[-1])
        key = f"{f[5]:<22} {f[6]:<36} {f[7]}"  # primitive, kernel, pass
        totals[key] += ms
        counts[key] += 1
        if f[5] == "convolution":
            shapes[f"{f[7]:<17} {f[-2]}"] += ms
    print(f"{'ms':>9} {'calls':>5}  primitive / kernel / pass")
    for key, ms in totals.most_common():
        print(f"{ms:9.1f} {counts[key]:5d}  {key}")
    print(f"{sum(totals.values()):9.1f}        all oneDNN primitives")
    if by_shape:
        print("\nconvolutions by pass and geometry:")
        for key, ms in sorted(shapes.items()):
            print(f"{ms:9.1f}  {key}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="r3d18", choices=list(wl.PROFILE_WORKLOADS))
    parser.add_argument("--by-shape", action="store_true")
    parser.add_argument("--infer", action="store_true", help="r3d18 batch-1 inference instead of a training step")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.workload, args.infer, args.precision)
        return 0
    env = dict(os.environ, ONEDNN_VERBOSE="1", GLOG_v="3")
    done = subprocess.run([sys.executable, __file__, "--child", "--workload", args.workload]
                          + (["--infer"] if args.infer else []) + ["--precision", args.precision],
                          capture_output=True, text=True, env=env, cwd=wl.ROOT)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        return done.returncode
    out = done.stdout.splitlines()
    if MARK not in out:
        print("error: the child printed no measured step", file=sys.stderr)
        return 1
    summarise(out[out.index(MARK) + 1:], args.by_shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
