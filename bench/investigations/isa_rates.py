"""FP32 inference's FLOP rate against a float32 GEMM's on the same cores, per ISA (issue 30, Goal: "what limits
it").

    .venv/bin/python bench/investigations/isa_rates.py [--caps AVX2,AVX512_CORE,none] [--reps 15]

For each oneDNN ISA cap (``none``: the CPU's own ISA) a child process, started with ``ONEDNN_MAX_CPU_ISA`` set
(and ``MKL_ENABLE_INSTRUCTIONS`` to the matching level, so that MKL's GEMM gets the same cap), measures:

- our FP32 inference network (src/models/inference.py, the fused op) on r3d50 batch 1, 3x16x112x112: 20.1 GFLOP
  per clip (PyTorch's flop counter, docs/performance.md), the fastest of ``--reps`` calls;
- a 4096 x 4096 x 4096 float32 GEMM (137.4 GFLOP) through oneDNN (PyTorch's bundled oneDNN, an inner product on
  mkldnn tensors: the same library family and cap as ours) and through MKL (torch.mm), the fastest of 5.

It prints one line per cap: the ISA oneDNN reports, the three rates in GFLOP/s and ours as a fraction of the
faster GEMM. Both use every core (torch.set_num_threads(os.cpu_count())). A cap only selects the kernels
another CPU would run: on this machine they run on its own execution units (docs/performance.md "On each ISA").
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import workloads as wl  # noqa: E402

R3D50_GFLOP = 20.1
GEMM_N = 4096
MKL_LEVEL = {"AVX2": "AVX2", "AVX512_CORE": "AVX512", "AVX512_CORE_VNNI": "AVX512"}


def fastest(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


ISA_NAMES = {0x7: "avx2", 0xf: "avx2_vnni", 0x27: "avx512_core", 0x67: "avx512_core_vnni",
             0xe7: "avx512_core_bf16", 0x1ef: "avx512_core_fp16", 0xfef: "avx512_core_amx"}  # dnnl_cpu_isa_t


def onednn_isa():
    """The ISA MindSpore's oneDNN runs at (dnnl_get_effective_cpu_isa), by name."""
    import ctypes

    import mindspore

    lib = ctypes.CDLL(str(Path(mindspore.__file__).parent / "lib" / "libdnnl.so.3"))
    value = lib.dnnl_get_effective_cpu_isa()
    return ISA_NAMES.get(value, hex(value))


def child(reps):
    import torch
    import torch.utils.mkldnn

    from src.runtime import setup_context

    torch.set_num_threads(os.cpu_count())
    setup_context("CPU", "GRAPH", conv_impl="auto", infer_precision="fp32")
    workload = next(w for w in wl.SPEED_WORKLOADS if w.name == "r3d50 infer b1")
    infer = wl.ms_infer(workload, "fast", fused=True, precision="fp32")[0]
    ours = fastest(infer, reps)
    a, b = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)
    dense = torch.utils.mkldnn.to_mkldnn(torch.nn.Linear(GEMM_N, GEMM_N, bias=False).eval())
    a_mkldnn = a.to_mkldnn()
    gflop = 2 * GEMM_N ** 3 / 1e9
    with torch.no_grad():
        onednn = fastest(lambda: dense(a_mkldnn), 5)
        mkl = fastest(lambda: torch.mm(a, b), 5)
    print(json.dumps({"isa": onednn_isa(), "ours": R3D50_GFLOP / ours, "ours_s": ours,
                      "onednn_gemm": gflop / onednn, "mkl_gemm": gflop / mkl}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="AVX2,AVX512_CORE,none")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.reps)
    print("cap               oneDNN ISA                      ours FP32 r3d50 b1   oneDNN GEMM   MKL GEMM  ours/GEMM")
    for cap in args.caps.split(","):
        env = dict(os.environ, GLOG_v="3")
        for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
            env.pop(name, None)
        if cap != "none":
            env["ONEDNN_MAX_CPU_ISA"] = cap
            env["MKL_ENABLE_INSTRUCTIONS"] = MKL_LEVEL.get(cap, "AVX512")
        done = subprocess.run([sys.executable, __file__, "--child", "--reps", str(args.reps)], env=env,
                              capture_output=True, text=True, cwd=wl.ROOT)
        if done.returncode:
            print(f"{cap:17s} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        best = max(r["onednn_gemm"], r["mkl_gemm"])
        print(f"{cap:17s} {r['isa'][:31]:31s} {r['ours']:7.1f} GFLOP/s ({r['ours_s']:.3f} s) {r['onednn_gemm']:8.1f}"
              f"   {r['mkl_gemm']:8.1f}  {r['ours'] / best:8.2f}")


if __name__ == "__main__":
    main()
