"""The training recipe of the original suite, with resume, data-parallel ranks and in-training evaluation.

A straight line: datasets -> model -> pretrained weights -> freeze before ``start_ft`` -> loss ->
SGD (Nesterov) with a per-step LR array -> one-step cell -> epochs. The loop is our own (not
Model.train) so that it can log data-wait time and restore the exact epoch / step / LR position.
"""
import logging
import time

import mindspore as ms
import mindspore.nn as nn

from src.config import save_config
from src.context import setup_from_config
from src.data.datasets import create_eval_dataset, create_train_dataset, train_steps_per_epoch
from src.errors import UserError
from src.evaluation import mindspore_predictor, run_evaluation
from src.loss import CrossEntropySmooth
from src.lr import lr_from_config
from src.models.resnet3d import model_from_config
from src.train.checkpoints import CheckpointManager, restore_training_state
from src.train.logger import TrainLogger
from src.weights.checkpoint import load_pretrained

log = logging.getLogger("resnet3d")
# top-level modules in forward order; fine-tuning trains start_ft and everything after it
MODULE_ORDER = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")


def init_distributed(cfg):
    """(rank_id, rank_size); initialises the communication group when run_distribute is set."""
    if not cfg.run_distribute:
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank_size = get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=rank_size)
    return get_rank(), rank_size


def freeze_before(net, start_ft):
    """Freeze every parameter of the modules before ``start_ft``; return the trainable parameters."""
    first = MODULE_ORDER.index("conv1" if start_ft == "conv1" else start_ft)
    trainable = []
    for param in net.get_parameters():
        module = param.name.split(".")[0]
        if module not in MODULE_ORDER:
            raise UserError(f"parameter {param.name} belongs to no known module")
        if MODULE_ORDER.index(module) < first:
            param.requires_grad = False
        elif param.requires_grad:
            trainable.append(param)
    return trainable


def build_train_step(cfg, net, steps_per_epoch):
    """(one-step cell, learning-rate array). Loss scale is fixed: harmless in FP32, needed for FP16."""
    lr = lr_from_config(cfg, steps_per_epoch)
    params = freeze_before(net, cfg.start_ft)
    if cfg.device_target == "Ascend":
        net = ms.amp.auto_mixed_precision(net, "O2")  # FP16 convs, FP32 BatchNorm, as the original on Ascend
    loss_scale = float(cfg.loss_scale)
    opt = nn.SGD(params, learning_rate=ms.Tensor(lr), momentum=float(cfg.momentum),
                 weight_decay=float(cfg.weight_decay), nesterov=True, loss_scale=loss_scale)
    loss = CrossEntropySmooth(int(cfg.n_classes), float(cfg.label_smoothing))
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt, sens=loss_scale)
    step.set_train()
    return step, lr


def _evaluate(cfg, net, eval_data):
    result, _ = run_evaluation(mindspore_predictor(net), eval_data, bool(cfg.ignore), progress=False)
    net.set_train(True)
    return result


def train(cfg, on_epoch_end=None, print_fn=print):
    """Run the whole training described by ``cfg``. Returns a summary dict."""
    runtime = setup_from_config(cfg)
    rank_id, rank_size = init_distributed(cfg)
    is_main = rank_id == 0
    if cfg.batch_size < 1 or cfg.n_epochs < 1:
        raise UserError("--batch_size and --n_epochs must be at least 1")
    steps_per_epoch = train_steps_per_epoch(cfg, rank_size)
    if steps_per_epoch < 1:
        raise UserError(f"--batch_size {cfg.batch_size} leaves no full batch per epoch on {rank_size} rank(s): "
                        f"lower it")
    eval_data = create_eval_dataset(cfg, cfg.eval_subset) if cfg.eval_in_training and is_main else None

    net = model_from_config(cfg, conv_impl=runtime.conv_impl)
    if cfg.pretrain_path:
        print_fn(load_pretrained(net, cfg.pretrain_path, int(cfg.n_classes)))
    train_step, lr = build_train_step(cfg, net, steps_per_epoch)

    ckpts = CheckpointManager(cfg.result_path, cfg.dataset, cfg.keep_checkpoint_max)
    start_epoch = 0
    resume_from = ckpts.resolve_resume(cfg.resume)
    if resume_from:
        start_epoch = restore_training_state(train_step, resume_from)
        print_fn(f"resumed from {resume_from}: epoch {start_epoch} done, global step "
                 f"{int(train_step.optimizer.global_step.asnumpy())}")
    if is_main:
        save_config(cfg, cfg.result_path)
    logger = TrainLogger(cfg.result_path, write=is_main, print_fn=print_fn if is_main else (lambda *_: None),
                         resume_epoch=start_epoch)
    best = (ckpts.best_metrics() or {}).get("top1", -1.0) if resume_from else -1.0
    print_fn(f"training {cfg.dataset}: {steps_per_epoch} steps/epoch x {cfg.n_epochs} epochs, batch "
             f"{cfg.batch_size} x {rank_size} rank(s), {runtime.describe()}")
    global_step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch + 1, int(cfg.n_epochs) + 1):
        iterator = create_train_dataset(cfg, epoch, rank_id, rank_size).create_tuple_iterator(num_epochs=1)
        epoch_start, data_wait, losses = time.time(), 0.0, []
        for step in range(1, steps_per_epoch + 1):
            t0 = time.time()
            clip, label = next(iterator)
            t1 = time.time()
            loss = float(train_step(clip, label).asnumpy())
            global_step += 1
            data_wait += t1 - t0
            losses.append(loss)
            logger.step(epoch, step, global_step, loss, float(lr[global_step - 1]), time.time() - t0, t1 - t0)
        epoch_time = time.time() - epoch_start
        due = epoch % int(cfg.eval_interval) == 0 or epoch == int(cfg.n_epochs)
        val = _evaluate(cfg, net, eval_data) if eval_data is not None and due else None
        logger.epoch(epoch, steps_per_epoch, losses, epoch_time, steps_per_epoch * int(cfg.batch_size), data_wait,
                     float(lr[global_step - 1]), val)
        if is_main and (epoch % int(cfg.save_checkpoint_epochs) == 0 or epoch == cfg.n_epochs):
            ckpts.save(train_step, epoch, steps_per_epoch)
        if val is not None and val.top1 > best:
            best = val.top1
            ckpts.save_best(net, dict(epoch=epoch, line=val.line(), **{k: v for k, v in val.to_dict().items()
                                                                         if k != "video_predictions"}))
            print_fn(f"new best video top-1 {100 * best:.1f}% at epoch {epoch}: saved {ckpts.dir / 'best.ckpt'}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, train_step)
    return dict(steps_per_epoch=steps_per_epoch, global_step=global_step, best_top1=best,
                checkpoints=[str(p) for _, p in ckpts.epoch_checkpoints()], net=net)
