"""One optimizer step: fine-tuning freeze, mixed precision, loss, SGD (Nesterov by default) with the per-step
LR array, loss scaling and gradient accumulation.

Three ways to build it, one interface (:class:`TrainStep`):
- the original's: ``nn.TrainOneStepCell`` with a fixed loss scale and no overflow check
  (``loss_scale_type: fixed``, ``drop_overflow_update: False``, ``accumulation_steps: 1``);
- otherwise (``drop_overflow_update``, ``loss_scale_type: dynamic`` or ``accumulation_steps`` > 1): the scaled
  gradients of ``accumulation_steps`` micro-batches are added up, averaged, unscaled, all-reduced once,
  checked with ``mindspore.amp.all_finite`` and MindSpore's fixed / dynamic loss-scale update cells, and
  applied unless they overflow. (``nn.TrainOneStepWithLossScaleCell`` does the same for one micro-batch, but
  its overflow check uses an NPU status op that the CPU backend lacks.)
"""
import logging
from dataclasses import dataclass

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from src.errors import UserError
from src.ops.fast_conv3d import set_training_precision
from src.train.loss import CrossEntropySmooth

# top-level modules in forward order (a family's network may define its own); fine-tuning trains start_ft and
# everything after it; start_ft conv1 is the first module (R(2+1)D's conv1_s)
MODULE_ORDER = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")
log = logging.getLogger(__name__)


def freeze_before(net, start_ft):
    """Freeze every parameter of the modules before ``start_ft``; return the trainable parameters."""
    order = getattr(net, "MODULE_ORDER", MODULE_ORDER)
    first = 0 if start_ft == "conv1" else order.index(start_ft)
    trainable = []
    for param in net.get_parameters():
        module = param.name.split(".")[0]
        if module not in order:
            raise UserError(f"parameter {param.name} belongs to no known module")
        if order.index(module) < first:
            param.requires_grad = False
        elif param.requires_grad:
            trainable.append(param)
    return trainable


def resolve_amp_level(amp_level, device_target, bf16_missing="not checked"):
    """The AMP level to train at. 'auto' = O2 on Ascend (the original); on the CPU O2 where our BF16
    convolutions can run (``bf16_missing`` None: src.ops.isa.bf16_missing), else O0; O0 on GPU.
    On the CPU, O1 and O2 mean BF16 convolutions (the rest FP32) and O3 is refused; a level this machine
    cannot run is a UserError."""
    if amp_level == "auto":
        return "O2" if device_target == "Ascend" or (device_target == "CPU" and bf16_missing is None) else "O0"
    if device_target != "CPU" or amp_level == "O0":
        return amp_level
    if amp_level == "O3":
        raise UserError("--amp_level=O3 casts BatchNorm and the loss too, which the CPU keeps in FP32: use "
                        "--amp_level=O2 (BF16 convolutions) or O0 (FP32)")
    if bf16_missing is not None:
        raise UserError(f"--amp_level={amp_level} trains with BF16 convolutions on the CPU, but {bf16_missing}: "
                        f"use --amp_level=O0 (or auto)")
    return amp_level


def mixed_precision(net, level, device_target="CPU", loss_scale=1.0):
    """``net`` at AMP ``level`` (resolved by resolve_amp_level), BatchNorm always in FP32. On the CPU, O1 / O2
    make our oneDNN convolutions compute in BF16 (forward, backward-data, backward-weights; FP32
    accumulation and output): weights, BatchNorm, the head and the loss stay FP32."""
    if level == "O0":
        return net
    if device_target == "CPU":
        if not set_training_precision(net, "bf16"):
            raise UserError(f"--amp_level={level} on the CPU needs the fast oneDNN convolutions "
                            f"(conv_impl fast): use --amp_level=O0")
        note = ("; BF16 keeps FP32's exponent range, so loss scaling is not needed (loss_scale "
                f"{loss_scale:g} is a power of two and changes no result)") if loss_scale != 1 else ""
        log.info("amp_level=%s on the CPU: BF16 convolutions with FP32 accumulation; FP32 weights, BatchNorm "
                 "and loss%s", level, note)
        return net
    net = ms.amp.auto_mixed_precision(net, level)
    if level == "O3":  # O3 casts everything: put BatchNorm back to FP32, as O2 keeps it
        for _, cell in net.cells_and_names():
            if isinstance(cell, nn.BatchNorm3d):
                cell.to_float(ms.float32)
    return net


@dataclass
class StepResult:
    loss: float
    overflow: bool
    scale_before: float
    scale_after: float


class TrainStep:
    """``step(batches) -> StepResult`` for a list of ``accumulation_steps`` (clip, label) micro-batches.
    ``cell`` holds every parameter of the training state (checkpoints save and restore it)."""

    def __init__(self, cell, run, optimizer, scale=None):
        self.cell, self._run, self.optimizer, self._scale = cell, run, optimizer, scale

    def __call__(self, batches):
        before = self.scale
        loss, overflow = self._run(batches)
        return StepResult(loss, overflow, before, self.scale)

    @property
    def scale(self):
        return float(self._scale.asnumpy()) if self._scale is not None else None

    @property
    def global_step(self):
        return int(self.optimizer.global_step.asnumpy())

    def get_parameters(self):
        return self.cell.get_parameters()


_divide = ops.MultitypeFuncGraph("divide")
_zero = ops.MultitypeFuncGraph("zero")


@_divide.register("Tensor", "Tensor")
def _divide_tensor(divisor, grad):
    return grad / divisor


@_zero.register("Tensor")
def _zero_tensor(accum):
    return ops.assign(accum, ops.zeros_like(accum))


class _AccumulateGrads(nn.Cell):
    """One micro-batch: the loss, and its gradients (scaled by the loss scale) added to ``accum``."""

    def __init__(self, net_with_loss, weights, accum, scale_sense):
        super().__init__(auto_prefix=False)
        self.network, self.weights, self.accum, self.scale_sense = net_with_loss, weights, accum, scale_sense
        self.network.set_grad()
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()

    def construct(self, clip, label):
        loss = self.network(clip, label)
        sens = ops.ones_like(loss) * ops.cast(self.scale_sense, ops.dtype(loss))
        grads = self.grad(self.network, self.weights)(clip, label, sens)
        return ops.depend(loss, self.hyper_map(ops.assign_add, self.accum, grads))


class _ApplyGrads(nn.Cell):
    """The accumulated gradients, averaged and unscaled, all-reduced, checked, applied; then zeroed."""

    def __init__(self, optimizer, accum, scale_sense, update_cell, steps, drop_overflow, reducer):
        super().__init__(auto_prefix=False)
        self.optimizer, self.accum, self.scale_sense = optimizer, accum, scale_sense
        self.update_cell, self.steps, self.drop_overflow, self.reducer = update_cell, steps, drop_overflow, reducer
        self.hyper_map = ops.HyperMap()

    def construct(self):
        divisor = ops.cast(self.scale_sense, ms.float32) * self.steps
        grads = self.reducer(self.hyper_map(ops.partial(_divide, divisor), self.accum))
        overflow = ops.logical_not(ms.amp.all_finite(grads))
        if self.update_cell is not None:
            overflow = self.update_cell(self.scale_sense, overflow)
        if self.drop_overflow:
            if not overflow:
                overflow = ops.depend(overflow, self.optimizer(grads))
        else:
            overflow = ops.depend(overflow, self.optimizer(grads))
        return ops.depend(overflow, self.hyper_map(_zero, self.accum))


class _State(nn.Cell):
    """Container of every parameter of an accumulating step (network, optimiser, accumulators, scale)."""

    def __init__(self, accumulate, apply):
        super().__init__(auto_prefix=False)
        self.micro_batch, self.update_step = accumulate, apply


def _grad_reducer(weights):
    mode = ms.get_auto_parallel_context("parallel_mode")
    if mode in (ms.ParallelMode.DATA_PARALLEL, ms.ParallelMode.HYBRID_PARALLEL):
        return nn.DistributedGradReducer(weights, ms.get_auto_parallel_context("gradients_mean"),
                                         ms.get_auto_parallel_context("device_num"))
    return nn.Identity()


def build_train_step(net, lr, *, start_ft, device_target, n_classes, label_smoothing, momentum, weight_decay,
                     loss_scale, loss_scale_type="fixed", drop_overflow_update=False, accumulation_steps=1,
                     amp_level="auto", scale_window=1000, nesterov=True, soft_targets=False,
                     bf16_missing="not checked"):
    """The :class:`TrainStep` over ``net`` with learning rates ``lr`` (one per optimizer step).
    ``soft_targets``: the micro-batches carry float target rows (mixup / cutmix) instead of class indices.
    ``bf16_missing``: Runtime.bf16_missing (None where BF16 training can run on the CPU; see resolve_amp_level)."""
    params = freeze_before(net, start_ft)
    net = mixed_precision(net, resolve_amp_level(amp_level, device_target, bf16_missing), device_target, loss_scale)
    loss = CrossEntropySmooth(n_classes, label_smoothing, dense=soft_targets)
    net_with_loss = nn.WithLossCell(net, loss)
    original = loss_scale_type == "fixed" and not drop_overflow_update and accumulation_steps == 1
    # the original unscales inside the optimizer; the loss-scale cells unscale the gradients themselves
    opt = nn.SGD(params, learning_rate=ms.Tensor(lr), momentum=momentum, weight_decay=weight_decay,
                 nesterov=nesterov, loss_scale=loss_scale if original else 1.0)
    if original:
        cell = nn.TrainOneStepCell(net_with_loss, opt, sens=loss_scale)
        cell.set_train()

        def run(batches):
            (clip, label), = batches
            return float(cell(clip, label).asnumpy()), False

        return TrainStep(cell, run, opt)
    if loss_scale_type == "dynamic":
        update = nn.DynamicLossScaleUpdateCell(loss_scale_value=loss_scale, scale_factor=2, scale_window=scale_window)
    else:
        update = nn.FixedLossScaleUpdateCell(loss_scale_value=loss_scale)
    weights = opt.parameters
    accum = weights.clone(prefix="accum_grads", init="zeros")
    scale = ms.Parameter(ms.Tensor(loss_scale, ms.float32), name="scale_sense")
    accumulate = _AccumulateGrads(net_with_loss, weights, accum, scale)
    apply = _ApplyGrads(opt, accum, scale, update, float(accumulation_steps),
                        drop_overflow_update or loss_scale_type == "dynamic", _grad_reducer(weights))
    cell = _State(accumulate, apply)
    cell.set_train()

    def run(batches):
        losses = [float(accumulate(clip, label).asnumpy()) for clip, label in batches]
        overflow = bool(apply().asnumpy())
        return sum(losses) / len(losses), overflow

    return TrainStep(cell, run, opt, scale)


def create_train_step(net, lr, optim, *, device_target, n_classes, bf16_missing="not checked"):
    """The TrainStep for the config's optimisation section (``cfg.optimisation``)."""
    return build_train_step(net, lr, start_ft=optim.start_ft, device_target=device_target, n_classes=n_classes,
                            bf16_missing=bf16_missing,
                            label_smoothing=optim.label_smoothing, momentum=optim.momentum,
                            weight_decay=optim.weight_decay, loss_scale=optim.loss_scale,
                            loss_scale_type=optim.loss_scale_type, drop_overflow_update=optim.drop_overflow_update,
                            accumulation_steps=optim.accumulation_steps, amp_level=optim.amp_level,
                            nesterov=optim.nesterov, soft_targets=mixing(optim))


def mixing(optim):
    """Whether batches are mixed (mixup / cutmix): the targets are then soft rows."""
    return optim.mixup_alpha > 0 or optim.cutmix_alpha > 0
