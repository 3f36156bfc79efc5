"""What the benchmarks run: model configurations, input shapes and one-step builders for MindSpore,
PyTorch (tests/helpers/torch_reference.py, NCDHW or channels_last_3d), ONNX Runtime and OpenVINO (both on our own
ONNX export).

Every builder returns a no-argument callable running one training step or one inference call to
completion (results copied to the host), so that the timing loop can alternate frameworks.
"""
import os
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TORCH_LAYOUTS = ("ncdhw", "channels_last_3d")


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str                 # "train" or "infer"
    depth: int
    batch: int
    clip: tuple               # C, T, H, W
    widen: float = 1.0
    t_size: int = 7           # conv1_t_size
    classes: int = 101
    model: str = "resnet"     # family (src/models/families.py); resnext uses cardinality 32

    def model_kwargs(self):
        return dict(widen_factor=self.widen, conv1_t_size=self.t_size, n_classes=self.classes)

    def describe(self):
        return (f"{self.model} depth {self.depth}, widen {self.widen}, "
                f"batch {self.batch}x{'x'.join(map(str, self.clip))}, {self.classes} classes")


FULL = (3, 16, 112, 112)
# bench/model_speed.py
SPEED_WORKLOADS = (
    Workload("r3d18 train", "train", 18, 8, FULL),
    Workload("r3d10 train", "train", 10, 8, (3, 8, 56, 56)),
    Workload("resnext50 train", "train", 50, 8, (3, 8, 56, 56), model="resnext"),
    Workload("r3d18 infer b1", "infer", 18, 1, FULL),
    Workload("r3d18 infer b8", "infer", 18, 8, FULL),
    Workload("r3d50 infer b1", "infer", 50, 1, FULL),
    Workload("r3d50 infer b8", "infer", 50, 8, FULL),
    Workload("r2p1d18 infer b1", "infer", 18, 1, FULL, model="resnet2p1d"),
    Workload("resnext101 infer b1", "infer", 101, 1, FULL, model="resnext"),
)
# bench/step_profile.py
PROFILE_WORKLOADS = {
    "r3d18": Workload("r3d18", "train", 18, 8, FULL),
    "r3d18-small": Workload("r3d18-small", "train", 18, 8, (3, 8, 56, 56)),
    "demo": Workload("demo", "train", 10, 16, (3, 8, 32, 32), widen=0.25, t_size=3, classes=8),
}


def inputs(w, seed=0):
    """(clips float32 [batch, C, T, H, W], labels int32 [batch]) as numpy arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal((w.batch, *w.clip)).astype(np.float32),
            rng.integers(0, w.classes, w.batch).astype(np.int32))


def ms_model(w, conv_impl):
    from src.models.factory import ModelSpec, build_model

    return build_model(ModelSpec(model=w.model, model_depth=w.depth, **w.model_kwargs()), conv_impl=conv_impl)


def ms_train_step(w, conv_impl, nesterov=False, precision="fp32"):
    """One MindSpore training step (GRAPH mode when the context says so): SGD momentum 0.9; ``precision``
    bf16 = --amp_level=O2 on the CPU (BF16 convolutions, the rest FP32; src/train/step.py)."""
    from mindspore import Tensor, nn

    from src.ops.fast_conv3d import set_training_precision

    net = ms_model(w, conv_impl)
    if precision != "fp32":
        set_training_precision(net, precision)
    x, y = (Tensor(a) for a in inputs(w))
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.SGD(net.trainable_params(), learning_rate=0.01, momentum=0.9, nesterov=nesterov)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    step.set_train()
    return lambda: step(x, y).asnumpy()


def ms_infer(w, conv_impl, fused=True, precision="fp32"):
    """MindSpore inference: the BN-folded inference network (``fused``, in ``precision`` fp32 or bf16) or the
    eval-mode model. Returns (call, eval-mode model) so that other backends can reuse the same weights."""
    from mindspore import Tensor

    from src.models.inference import inference_network

    net = ms_model(w, conv_impl)
    net.set_train(False)
    x = Tensor(inputs(w)[0])
    runner = inference_network(net, conv_impl, precision) if fused else net
    return (lambda: runner(x).asnumpy()), net


def torch_model(w, layout="ncdhw"):
    import torch
    from tests.helpers.torch_families import TorchFamily
    from tests.helpers.torch_reference import TorchResNet3D

    if w.model == "resnet":
        net = TorchResNet3D(w.depth, n_classes=w.classes, widen_factor=w.widen, conv1_t_size=w.t_size)
    else:
        net = TorchFamily(w.model, w.depth, n_classes=w.classes, widen_factor=w.widen, conv1_t_size=w.t_size)
    return net.to(memory_format=torch.channels_last_3d) if layout == "channels_last_3d" else net


def _torch_tensor(a, layout):
    import torch

    t = torch.from_numpy(a)
    return t.to(memory_format=torch.channels_last_3d) if layout == "channels_last_3d" else t


def torch_train_step(w, layout="ncdhw", nesterov=False):
    import torch

    net = torch_model(w, layout).train()
    x_np, y_np = inputs(w)
    x, y = _torch_tensor(x_np, layout), torch.from_numpy(y_np).long()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=nesterov)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return step


def torch_infer(w, layout="ncdhw"):
    import torch

    net = torch_model(w, layout).eval()
    x = _torch_tensor(inputs(w)[0], layout)

    def infer():
        with torch.no_grad():
            return net(x)
    return infer


def _with_onnx_export(w, ms_net, workdir, load):
    """load(path) of ``ms_net`` exported by our export path (src/deploy/export.py: explicit padding, softmax
    head, parity-checked). The .onnx file is kept in ``workdir`` when given, else written to a temporary
    folder removed once ``load`` returns: the loaded model holds it (a file of 130-190 MB)."""
    from mindspore import Tensor

    from src.deploy.export import export_network, input_shape

    native = ms_model(w, "native")  # export needs native convolutions; same Parameters' values
    values = {p.name: p.asnumpy() for p in ms_net.get_parameters()}
    for p in native.get_parameters():
        p.set_data(Tensor(values[p.name]))
    arch = types.SimpleNamespace(n_input_channels=w.clip[0])
    data = types.SimpleNamespace(sample_duration=w.clip[1], sample_size=w.clip[2])
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        path = os.path.join(workdir or tmp, f"{w.name.replace(' ', '_')}.onnx")
        if not os.path.isfile(path):  # a workdir shared by the runners of one workload: exported once
            export_network(native, "ONNX", input_shape(w.batch, arch, data), path)
        return load(path)


def ort_infer(w, ms_net, threads, workdir=None):
    """ONNX Runtime on ``ms_net``'s ONNX export, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = _with_onnx_export(w, ms_net, workdir,
                                lambda path: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
    x = inputs(w)[0]
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})


def openvino_infer(w, ms_net, threads, workdir=None, precision=None):
    """OpenVINO's CPU plugin on ``ms_net``'s ONNX export at its default precision (BF16 on CPUs with native
    BF16, else FP32: see openvino_precision) or at ``precision`` (its INFERENCE_PRECISION_HINT: "f32"),
    ``threads`` inference threads."""
    import openvino as ov

    from src.ops.isa import env_cap_without_bf16

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads}
    if env_cap_without_bf16():  # its oneDNN obeys the cap too, its BF16 default (from the CPU's flags) does not
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = _with_onnx_export(w, ms_net, workdir, lambda path: core.compile_model(
        core.read_model(path), "CPU", config))
    request = compiled.create_infer_request()
    x = inputs(w)[0]
    return lambda: request.infer({0: x})


def openvino_precision():
    """'OpenVINO <version>, default inference precision <type>' on this CPU."""
    import openvino as ov

    from src.ops.isa import env_cap_without_bf16

    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    line = f"OpenVINO {ov.__version__.split('-')[0]}, default inference precision {hint.get_type_name()}"
    cap = env_cap_without_bf16()
    return f"{line}; oneDNN capped by {cap}: OpenVINO run at f32" if cap else line


def alternate(fns, reps):
    """{name: [wall seconds]} of ``reps`` rounds calling every fn once per round, in turn, so that
    load from other processes hits all alike."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def medians(times):
    return {k: statistics.median(v) for k, v in times.items()}
