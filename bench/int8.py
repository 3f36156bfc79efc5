"""INT8 runners of bench/model_speed.py: OpenVINO INT8 (NNCF's post-training ``nncf.quantize`` of our own FP32 ONNX
export, run by OpenVINO's CPU plugin), OpenVINO forced to FP32, ONNX Runtime on our QDQ export of our INT8 model, and
our own INT8 inference network (src/models/quantized.py).

Ours and NNCF are calibrated on the same clips (calibration_clips: a fixed, seeded set, since the bench has no
videos and random weights; quantize.py takes evaluation views of its first training videos) with the same
calibration code as quantize.py (src.quant.calibrate). A runner that cannot be built here raises Skip with the
reason: the bench prints it as a skipped row and goes on.
"""
import contextlib
import logging
import sys

import workloads as wl

CALIBRATION_CLIPS = 8
CALIBRATION_SEED = 1000  # apart from the timed input's seed (workloads.inputs: 0)
# the workloads that get INT8 rows (issue 30: r3d18 / r3d50 batch 1 and 8, r2p1d18 batch 1)
INT8_WORKLOADS = ("r3d18 infer b1", "r3d18 infer b8", "r3d50 infer b1", "r3d50 infer b8", "r2p1d18 infer b1")
RUNNERS = ("ov fp32", "ov int8", "ms int8", "ort int8")  # int8_runners' names


class Skip(Exception):
    """A runner that cannot run here; the message says why."""


def calibration_clips(w, n=CALIBRATION_CLIPS):
    """``n`` clips float32 [C, T, H, W] (seeds CALIBRATION_SEED...), the same for every runner of ``w``."""
    return [wl.inputs(wl.Workload(w.name, w.kind, w.depth, 1, w.clip, w.widen, w.t_size, w.classes, w.model),
                      seed=CALIBRATION_SEED + i)[0][0] for i in range(n)]


def calibration_batches(w, clips):
    """``clips`` stacked into inputs of ``w``'s batch (the exported graph's static shape), cycling when fewer."""
    import numpy as np

    count = max(len(clips), w.batch)
    stacked = np.stack([clips[i % len(clips)] for i in range(count - count % w.batch)])
    return [stacked[i:i + w.batch] for i in range(0, len(stacked), w.batch)]


def openvino_int8_infer(w, ms_net, threads, workdir=None, clips=None, profile=False):
    """OpenVINO INT8: NNCF quantizes (post-training, default preset: symmetric, per-channel weights) OpenVINO's
    reading of our FP32 ONNX export on ``clips``' batches, and OpenVINO's CPU plugin runs the result.
    ``profile``: with its per-node profiling (PERF_COUNT; the infer request is the callable's ``request``)."""
    import numpy as np
    import openvino as ov
    try:
        import nncf
    except ImportError:
        raise Skip("nncf is not installed (pip install -r requirements-dev.txt)") from None

    nncf.set_log_level(logging.ERROR)
    core = ov.Core()
    batches = calibration_batches(w, clips or calibration_clips(w))

    def load(path):
        with contextlib.redirect_stdout(sys.stderr):  # its progress bars: keep the bench's stdout a table
            model = nncf.quantize(core.read_model(path), nncf.Dataset(batches), subset_size=len(batches) * w.batch)
        return core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERF_COUNT": profile})

    compiled = wl._with_onnx_export(w, ms_net, workdir, load)
    count = int8_convolutions(compiled)
    if not count:
        raise Skip("OpenVINO runs none of NNCF's quantized convolutions in INT8 here")
    request = compiled.create_infer_request()
    x = np.ascontiguousarray(wl.inputs(w)[0])

    def infer():
        return request.infer({0: x})
    infer.int8_convolutions = count
    infer.request = request
    return infer


def int8_convolutions(compiled):
    """How many convolutions an OpenVINO compiled model runs with u8/i8 inputs (its runtime graph's precisions)."""
    count = 0
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) == "Convolution" \
                and info["runtimePrecision"].astype(str) in ("u8", "i8"):
            count += 1
    return count


def openvino_fp32_infer(w, ms_net, threads, workdir=None):
    """OpenVINO on our FP32 ONNX export with its inference precision forced to f32 (its default is BF16 on
    CPUs with native BF16)."""
    return wl.openvino_infer(w, ms_net, threads, workdir, precision="f32")


def missing(*modules):
    """The first of ``modules`` (dotted names) this checkout lacks, or None."""
    import importlib.util

    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:  # its package is absent
            return name
    return None


def quantized(w, ms_net, clips, workdir):
    """Our INT8 description (src.quant.model.QuantNetwork) of eval-mode ``ms_net``: BatchNorm folded, calibrated
    on ``clips`` by quantize.py's calibration (src.quant.calibrate), weights quantized per channel. The
    calibration's float convolutions are MindSpore's native ones, oneDNN's reference kernel in this uncapped
    process (minutes per r3d50 clip): they run in a child capped at AVX2 (the "capped" configuration), given the
    weights through a checkpoint in ``workdir``."""
    absent = missing("src.quant.model", "src.quant.calibrate", "src.models.quantized")
    if absent:
        raise Skip(f"our INT8 network is not in this checkout ({absent} missing)")
    import json
    import os
    import subprocess

    import mindspore as ms
    import numpy as np

    from src.quant.model import quantized_network
    from src.quant.wiring import walk

    stem = os.path.join(workdir, w.name.replace(" ", "_"))
    ms.save_checkpoint(ms_net, stem + ".ckpt")
    np.save(stem + "_clips.npy", np.stack(clips))
    done = subprocess.run([sys.executable, __file__, "calibrate", w.name, stem], capture_output=True, text=True,
                          cwd=wl.ROOT, env=dict(os.environ, GLOG_v="3"))
    if done.returncode:
        raise Skip(f"calibration failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
    activations = {k: tuple(v) for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    return quantized_network(*walk(ms_net), activations)


def calibrate_child(name, stem):
    """The child of :func:`quantized`: JSON {tensor: [dtype, scale]} of workload ``name``'s weights at
    ``stem``.ckpt calibrated on ``stem``_clips.npy, with native convolutions under oneDNN's AVX2 cap."""
    import json

    import mindspore as ms
    import numpy as np

    from src.quant.calibrate import calibrate
    from src.quant.wiring import walk
    from src.runtime import setup_context

    setup_context("CPU", "PYNATIVE", conv_impl="native", cpu_isa_cap="on", infer_precision="fp32")
    w = next(x for x in wl.SPEED_WORKLOADS if x.name == name)
    net = wl.ms_model(w, "native")
    ms.load_param_into_net(net, ms.load_checkpoint(stem + ".ckpt"), strict_load=True)
    net.set_train(False)
    activations, _, _ = calibrate(walk(net), [np.load(stem + "_clips.npy")])
    print(json.dumps({k: [dtype, float(scale)] for k, (dtype, scale) in activations.items()}))


def ms_int8_infer(w, network, conv_impl):
    """Our INT8 inference network (src/models/quantized.py: the oneDNN INT8 op where built) of ``network``."""
    from mindspore import Tensor

    from src.models.quantized import int8_network

    net = int8_network(network, conv_impl)
    x = Tensor(wl.inputs(w)[0])
    return lambda: net(x).asnumpy()


def ort_qdq_infer(w, network, threads, workdir):
    """ONNX Runtime on our QDQ export (src/deploy/qdq.py) of ``network``; checks that it fused QLinearConv."""
    import os

    import onnx
    import onnxruntime as ort

    from src.deploy.qdq import qdq_model

    path = os.path.join(workdir, f"{w.name.replace(' ', '_')}_qdq.onnx")
    onnx.save(qdq_model(network, (w.batch, *w.clip)), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # not its note on saving an optimized model
    options.optimized_model_filepath = path + ".optimized"
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    fused = sum(node.op_type == "QLinearConv" for node in onnx.load(options.optimized_model_filepath).graph.node)
    if not fused:
        raise Skip("ONNX Runtime fused none of the QDQ export's convolutions into QLinearConv")
    x = wl.inputs(w)[0]

    def infer():
        return session.run(None, {"x": x})
    infer.qlinear_convs = fused
    return infer


def int8_runners(w, ms_net, info, threads, workdir):
    """({name: fn}, {name: skip reason}) of the INT8 rows of ``w`` (and "ov fp32", the FP32 reference); our INT8
    network and NNCF are calibrated on the same clips."""
    fns, skipped = {}, {}
    clips = calibration_clips(w)
    network = []

    def ours():
        if not network:
            network.append(quantized(w, ms_net, clips, workdir))
        return network[0]

    builders = {
        "ov fp32": lambda: openvino_fp32_infer(w, ms_net, threads, workdir),
        "ov int8": lambda: openvino_int8_infer(w, ms_net, threads, workdir, clips),
        "ms int8": lambda: ms_int8_infer(w, ours(), info.conv_impl),
        "ort int8": lambda: ort_qdq_infer(w, ours(), threads, workdir),
    }
    for name, build in builders.items():
        try:
            fns[name] = build()
        except Skip as why:
            skipped[name] = str(why)
    return fns, skipped


if __name__ == "__main__":  # bench/int8.py calibrate NAME STEM: quantized()'s child
    if len(sys.argv) == 4 and sys.argv[1] == "calibrate":
        calibrate_child(sys.argv[2], sys.argv[3])
