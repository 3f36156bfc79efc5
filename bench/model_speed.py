"""Whole-model speed, MindSpore vs PyTorch (both memory layouts), ONNX Runtime and OpenVINO, in one process.

    .venv/bin/python bench/model_speed.py [--quick] [--threads N] [--skip-capped] [--only TEXT] [--int8]

Workloads and step builders: bench/workloads.py. Runs alternate between all runners of a workload
(round-robin) and medians are reported, because other processes may share the cores.
- training: a GRAPH-mode step (forward, backward, SGD) of the model as trained, against PyTorch
  eager in NCDHW and in channels_last_3d; the ratio (clips/s, higher is better) is against the
  faster of the two layouts. On CPUs with native BF16 also the BF16 mixed-precision step ("MS BF16":
  --amp_level=O2, BF16 convolutions, the rest FP32).
- inference: the inference network (src/models/inference.py: BatchNorm folded, ReLU and residual
  add fused into the oneDNN op) in FP32 and, on CPUs with native BF16, in BF16 ("MS BF16"), against
  ONNX Runtime and OpenVINO (its default precision: BF16 where native) running the same weights exported
  by our export path (src/deploy/export.py) and against PyTorch (faster layout); time ratios, lower is
  better, taken with our faster precision. "MS unfused" is the eval-mode training network, for reference.
- INT8 (bench/int8.py; "fast" only; r3d18 / r3d50 batch 1 and 8, r2p1d18 batch 1; --int8 runs only these): our
  INT8 network (src/models/quantized.py), ONNX Runtime on its QDQ export (src/deploy/qdq.py), OpenVINO INT8 (NNCF's
  post-training nncf.quantize of the same FP32 ONNX export, calibrated on the same clips as ours) and OpenVINO
  forced to FP32 (the reference of our FP32). A runner that cannot be built here is a skipped row with its reason.
Configurations: "fast" (conv_impl auto -> our oneDNN ops, uncapped) in this process; "capped"
(native nn.Conv3d, oneDNN capped at AVX2; inference = the BN-folded native fallback) in a
subprocess, since the cap must be set before MindSpore builds its first oneDNN kernel. "native"
uncapped (oneDNN's reference kernel, ~50-65x PyTorch's time) is skipped.
The first line says the CPU's INT8 dot products and ISA flags, the second whether it has native BF16 and
OpenVINO's default precision on it. The last line: `train_speed_ratio_vs_torch=... train_speed_ratio_bf16_vs_fp32=...
infer_time_ratio_vs_torch=... infer_time_ratio_vs_onnxruntime=... infer_time_ratio_vs_onnxruntime_max=...
infer_time_ratio_vs_openvino=... infer_time_ratio_int8_vs_openvino_int8=... infer_time_ratio_int8_vs_fp32=...
infer_time_ratio_fp32_vs_openvino_fp32=...` for "fast" (r3d18 training, FP32 against PyTorch and BF16 against our
FP32 in clips/s; r3d50 batch-1 inference; _max is the worst inference workload; the first inference ratios with
our faster precision; int8_vs_openvino_int8 our INT8 / OpenVINO INT8, int8_vs_fp32 our INT8 / our FP32,
fp32_vs_openvino_fp32 both at FP32; n/a where a runner was skipped).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import int8  # noqa: E402
import workloads as wl  # noqa: E402

REPS = {"train": 5, "infer": 9}
QUICK_REPS = {"train": 3, "infer": 5}


def runners(w, config, info, threads):
    """({runner name: fn}, {runner name: why it is skipped}) for one workload."""
    if w.kind == "train":
        fns = {"ms": wl.ms_train_step(w, info.conv_impl)}
        if config == "fast" and info.bf16_missing is None:
            fns["ms bf16"] = wl.ms_train_step(w, info.conv_impl, precision="bf16")
        fns.update({f"torch {lay}": wl.torch_train_step(w, lay) for lay in wl.TORCH_LAYOUTS})
        return fns, {}
    fused, net = wl.ms_infer(w, info.conv_impl, fused=True)
    skipped = {}
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as workdir:  # one FP32 ONNX export per workload
        fns = {"ms": fused, "ms unfused": wl.ms_infer(w, info.conv_impl, fused=False)[0],
               "ort": wl.ort_infer(w, net, threads, workdir)}
        if config == "fast":
            fns["ov"] = wl.openvino_infer(w, net, threads, workdir)
            if info.infer_precision == "bf16":
                fns["ms bf16"] = wl.ms_infer(w, info.conv_impl, fused=True, precision="bf16")[0]
            if w.name in int8.INT8_WORKLOADS:
                more, skipped = int8.int8_runners(w, net, info, threads, workdir)
                fns.update(more)
    fns.update({f"torch {lay}": wl.torch_infer(w, lay) for lay in wl.TORCH_LAYOUTS})
    return fns, skipped


def measure(config, threads, reps, workloads):
    """{workload: {runner: median s, "kind", "batch"}} for one MindSpore configuration."""
    import torch
    from src.runtime import setup_context

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    info = setup_context("CPU", "GRAPH", conv_impl="native" if config == "capped" else "auto",
                         cpu_isa_cap="on" if config == "capped" else "auto",
                         infer_precision="fp32" if config == "capped" else "auto")
    print(f"# {config}: {info.describe()}, {threads} threads", file=sys.stderr)
    out = {}
    for w in workloads:
        fns, skipped = runners(w, config, info, threads)
        for name in [n for n in fns if n in int8.RUNNERS]:  # a failing INT8 runner is a skipped row, said why
            try:
                fns[name]()
            except (RuntimeError, ValueError, TypeError, OSError) as err:  # OSError: MindSpore reading its source
                skipped[name] = f"failed: {type(err).__name__}: {(str(err).strip().splitlines() or ['?'])[0][:160]}"
                del fns[name]
        wl.alternate(fns, 2)  # compile / warm up
        med = wl.medians(wl.alternate(fns, reps[w.kind]))
        out[w.name] = dict(med, kind=w.kind, batch=w.batch, skipped=skipped)
        print(f"#   {w.name}: " + " ".join(f"{k} {v:.3f}s" for k, v in med.items()), file=sys.stderr)
    return out


def best_torch(r):
    layout = min(wl.TORCH_LAYOUTS, key=lambda lay: r[f"torch {lay}"])
    return r[f"torch {layout}"], layout


def fastest_ms(r):
    """Our inference time at the faster precision (BF16 where it ran)."""
    return min(r["ms"], r.get("ms bf16", r["ms"]))


def print_table(results):
    print(f"{'workload':<16} {'config':<7} {'MindSpore':>10} {'MS BF16':>8} {'MS unfused':>10} {'PT NCDHW':>9} "
          f"{'PT CL3D':>9} {'ONNX RT':>8} {'OpenVINO':>8} {'vs PT':>6} {'vs ORT':>6} {'vs OV':>6}")
    print("(train: clips/s, ratio = MS/best PyTorch layout, higher is better; "
          "infer: seconds, ratios = faster MS precision's time / other time, lower is better)")
    for name in next(iter(results.values())):
        for config, res in results.items():
            r = res[name]
            th, _ = best_torch(r)
            if r["kind"] == "train":
                b = r["batch"]
                bf16 = f"{b / r['ms bf16']:>5.2f}c/s" if "ms bf16" in r else f"{'-':>8}"
                print(f"{name:<16} {config:<7} {b / r['ms']:>6.2f}c/s {bf16} {'':>10} "
                      f"{b / r['torch ncdhw']:>6.2f}c/s {b / r['torch channels_last_3d']:>6.2f}c/s {'':>8} {'':>8} "
                      f"{th / r['ms']:>6.2f} {'':>6} {'':>6}")
            else:
                ms_time = fastest_ms(r)
                bf16 = f"{r['ms bf16']:>7.3f}s" if "ms bf16" in r else f"{'-':>8}"
                ov = f"{r['ov']:>7.3f}s" if "ov" in r else f"{'-':>8}"
                vs_ov = f"{ms_time / r['ov']:>6.2f}" if "ov" in r else f"{'':>6}"
                print(f"{name:<16} {config:<7} {r['ms']:>9.3f}s {bf16} {r['ms unfused']:>9.3f}s "
                      f"{r['torch ncdhw']:>8.3f}s {r['torch channels_last_3d']:>8.3f}s {r['ort']:>7.3f}s {ov} "
                      f"{ms_time / th:>6.2f} {ms_time / r['ort']:>6.2f} {vs_ov}")
    print(f"{'(native)':<16} {'':<7} skipped: oneDNN reference kernel, ~50-65x PyTorch's time")


INT8_COLUMNS = (("ms", "MS FP32"), ("ms int8", "MS INT8"), ("ort int8", "ORT QDQ"), ("ov fp32", "OV FP32"),
                ("ov int8", "OV INT8"))
# (key of the last line, numerator, denominator): r3d50 batch 1 of the "fast" configuration
INT8_RATIOS = (("infer_time_ratio_int8_vs_openvino_int8", "ms int8", "ov int8"),
               ("infer_time_ratio_int8_vs_fp32", "ms int8", "ms"),
               ("infer_time_ratio_fp32_vs_openvino_fp32", "ms", "ov fp32"))


def _ratio(r, num, den):
    return r[num] / r[den] if num in r and den in r else None


def print_int8_table(fast):
    """The INT8 rows ("fast" configuration): seconds per call, and each skipped runner with its reason."""
    rows = [(name, r) for name, r in fast.items() if any(k in r or k in r.get("skipped", {}) for k in
                                                          ("ms int8", "ov int8", "ort int8"))]
    if not rows:
        return
    print(f"{'INT8 infer':<17} " + " ".join(f"{title:>8}" for _, title in INT8_COLUMNS)
          + f" {'INT8/FP32':>9} {'vs OV INT8':>10} {'FP32/OV FP32':>12}")
    print("(seconds, lower is better; MS INT8 = our INT8 network, ORT QDQ = ONNX Runtime on our QDQ export, "
          "OV INT8 = NNCF-quantized FP32 export, OV FP32 = OpenVINO forced to f32)")
    for name, r in rows:
        cells = [f"{r[k]:>7.4f}s" if k in r else f"{'skipped':>8}" for k, _ in INT8_COLUMNS]
        ratios = [_ratio(r, num, den) for _, num, den in (INT8_RATIOS[1], INT8_RATIOS[0], INT8_RATIOS[2])]
        shown = [f"{v:>{width}.2f}" if v is not None else f"{'-':>{width}}" for v, width in zip(ratios, (9, 10, 12))]
        print(f"{name:<17} " + " ".join(cells) + " " + " ".join(shown))
        for runner, why in r.get("skipped", {}).items():
            print(f"{'':<17} {runner}: skipped: {why}")


def summary(fast):
    """The last line, from the "fast" configuration."""
    parts = []
    train = fast.get("r3d18 train")
    if train:
        parts.append(f"train_speed_ratio_vs_torch={best_torch(train)[0] / train['ms']:.2f}")
        if "ms bf16" in train:
            parts.append(f"train_speed_ratio_bf16_vs_fp32={train['ms'] / train['ms bf16']:.2f}")
    infer = fast.get("r3d50 infer b1")
    if infer:
        parts.append(f"infer_time_ratio_vs_torch={fastest_ms(infer) / best_torch(infer)[0]:.2f}")
        parts.append(f"infer_time_ratio_vs_onnxruntime={fastest_ms(infer) / infer['ort']:.2f}")
    ort_ratios = [fastest_ms(r) / r["ort"] for r in fast.values() if r["kind"] == "infer"]
    if ort_ratios:
        parts.append(f"infer_time_ratio_vs_onnxruntime_max={max(ort_ratios):.2f}")
    if infer:
        parts.append(f"infer_time_ratio_vs_openvino={fastest_ms(infer) / infer['ov']:.2f}")
        for key, num, den in INT8_RATIOS:  # n/a: a runner skipped (the INT8 table says why)
            value = _ratio(infer, num, den)
            parts.append(f"{key}={'n/a' if value is None else f'{value:.2f}'}")
    return " ".join(parts)


# the /proc/cpuinfo flags that decide INT8 and BF16 speed (oneDNN's and OpenVINO's kernels)
ISA_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16",
             "amx_bf16")


def int8_capability_line():
    """What this CPU offers for INT8 (src.ops.isa.int8_support) and which of ISA_FLAGS it has."""
    from src.ops.isa import cpu_flags, int8_support

    _, description = int8_support()
    flags = cpu_flags()
    has = " ".join(f for f in ISA_FLAGS if f in flags) or "none"
    lacks = " ".join(f for f in ISA_FLAGS if f not in flags) or "none"
    return f"CPU INT8: {description}; flags: {has} (absent: {lacks})"


def capability_line():
    """What this CPU offers for BF16, and what OpenVINO picks by default on it."""
    from src.ops.isa import bf16_support

    _, description = bf16_support()
    return f"CPU: {description}; {wl.openvino_precision()}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip-capped", action="store_true", help="only the default (fast) configuration")
    parser.add_argument("--only", default="", help="run the workloads whose name contains this text")
    parser.add_argument("--int8", action="store_true", help="only the workloads with INT8 rows: "
                        + ", ".join(int8.INT8_WORKLOADS))
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args(argv)
    reps = QUICK_REPS if args.quick else REPS
    chosen = [w for w in wl.SPEED_WORKLOADS if args.only in w.name and (not args.int8 or w.name in int8.INT8_WORKLOADS)]
    if not chosen:
        print(f"error: --only {args.only!r} matches no workload ({', '.join(w.name for w in wl.SPEED_WORKLOADS)})",
              file=sys.stderr)
        return 2

    if args.config:  # child: one configuration, JSON as the last stdout line
        print(json.dumps(measure(args.config, args.threads, reps, chosen)))
        return 0

    print(int8_capability_line(), flush=True)
    print(capability_line(), flush=True)
    results = {"fast": measure("fast", args.threads, reps, chosen)}
    if not args.skip_capped:
        env = dict(os.environ, GLOG_v="3", OMP_NUM_THREADS=str(args.threads))
        cmd = [sys.executable, __file__, "--config", "capped", "--threads", str(args.threads),
               "--only", args.only] + (["--quick"] if args.quick else []) + (["--int8"] if args.int8 else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=wl.ROOT)
        sys.stderr.write(done.stderr[-2000:] if done.returncode else "")
        if done.returncode == 0:
            results["capped"] = json.loads(done.stdout.strip().splitlines()[-1])
    print_table(results)
    print_int8_table(results["fast"])
    print(summary(results["fast"]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_v", "3")
    sys.exit(main())
