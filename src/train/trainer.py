"""The training recipe of the original suite: run folder -> data -> model -> pretrained weights -> LR schedule
-> one-step cell -> resume -> src.engine.fit with the run's policies as callbacks.

Our own loop (not Model.train) so that it can log data-wait time, stop cleanly on a signal and restore the
exact epoch / step / LR position; what makes it safe to kill at any moment is described in src.engine.callbacks.
"""
import json
import logging
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from src.config import save_config
from src.config_keys import SECTION_TYPES
from src.data.datasets import (classes_to_train, create_train_dataset, eval_dataset_of, steps_per_epoch,
                               train_entries)
from src.data.degenerate import check_dataset_name, warn_degenerate
from src.data.folder_split import read_split
from src.data.presets import ClipSpec
from src.engine import callbacks as cb
from src.engine.fit import Loop, Stopped, fit
from src.engine.state import TrainState, check_fingerprint
from src.errors import UserError
from src.logs import RankWriter, out
from src.inference.loop import run_evaluation
from src.inference.predictors import mindspore_predictor
from src.models.factory import build_model
from src.train.logger import TrainLogger
from src.train.lr import Plateau, create_schedule
from src.train.mix import mix_batch
from src.train.signals import StopRequest
from src.train.step import create_train_step, mixing, resolve_amp_level
from src.weights.model_file import KEY as MODEL_RECORD_KEY, record_of
from src.weights.checkpoint import ARCHITECTURE_KEY, load_pretrained, load_training_state

log = logging.getLogger("resnet3d")
__all__ = ["Stopped", "train", "fingerprint"]
# the sections whose keys decide what training computes: a resumed run must keep them (src.config_keys)
RESULT_SECTIONS = tuple(name for name, (result, _) in SECTION_TYPES.items() if result)


def fingerprint(sections, **effective) -> dict:
    """The keys that decide what training computes (stored as JSON in every training checkpoint): every key of
    ``sections``, the config's result sections (RESULT_SECTIONS); ``effective``: values that the run uses in
    place of the sections' (start_ft without weights, the resolved amp_level)."""
    values = {f.name: getattr(section, f.name) for section in sections for f in fields(section)}
    return {k: effective.get(k, v) for k, v in values.items()}


def training_amp_level(requested, runtime) -> str:
    """The AMP level this run trains at (resolve_amp_level); on the CPU, what auto chose is said in one line.
    The resolved level goes into the checkpoints' fingerprint, so a resume keeps the precision."""
    level = resolve_amp_level(requested, runtime.device_target, runtime.bf16_missing)
    if requested == "auto" and runtime.device_target == "CPU":
        if level == "O0":
            log.info("amp_level=auto: O0, FP32 training (no BF16 here: %s)", runtime.bf16_missing)
        else:
            out.info(f"amp_level=auto: {level}, BF16 convolutions (this CPU computes BF16 natively); "
                     f"--amp_level=O0 trains in FP32")
    return level


def effective_start_ft(start_ft, pretrain_path, given=False) -> str:
    """start_ft follows the weights: the config's value when fine-tuning pretrained weights (``pretrain_path``);
    conv1 (the whole network trains) without them, since frozen random modules would never learn. Said in one
    line. ``given``: the command line gave --start_ft (then a frozen module without weights is an error)."""
    if pretrain_path:
        if start_ft != "conv1":
            out.info(f"start_ft={start_ft}: fine-tuning {pretrain_path}; the modules before {start_ft} stay frozen")
        return start_ft
    if start_ft != "conv1" and given:
        raise UserError(f"--start_ft={start_ft} freezes the modules before {start_ft}, but there are no "
                        f"pretrained weights (--pretrain_path is empty), so they would stay random: pass "
                        f"--pretrain_path=<a .ckpt from pth_to_ckpt.py>, or --start_ft=conv1 to train every layer")
    if start_ft != "conv1":
        out.info(f"start_ft=conv1: no pretrained weights, so every layer trains (the config's start_ft="
                 f"{start_ft} is for fine-tuning)")
    return "conv1"


def warn_if_lr_max_unreached(rates, lr_max, warmup_epochs, n_epochs) -> None:
    """One warning when the schedule never reaches lr_max (a warm-up at least as long as the run)."""
    if len(rates) and float(rates.max()) < lr_max * (1 - 1e-6):
        log.warning("warning: the learning rate never reaches lr_max=%g (at most %.4g): warmup_epochs=%g with "
                    "n_epochs=%d; lower --warmup_epochs or raise --n_epochs", lr_max, float(rates.max()),
                    warmup_epochs, n_epochs)


def check_fresh_folder(run_dir):
    """A new (non-resume) run must not mix with another run's checkpoints."""
    found = run_dir.checkpoints(any_dataset=True)
    if found:
        names = ", ".join(p.name for _, _, p in found[-3:])
        raise UserError(f"{run_dir.path} already holds training checkpoints of another run ({len(found)}: ... "
                        f"{names}): continue it with --resume=auto, or pass another --result_path")


def resolve_resume(run_dir, resume):
    """'' -> None; 'auto' -> the latest checkpoint of this folder (None if there is none); else the path."""
    if not resume:
        return None
    if resume == "auto":
        latest = run_dir.latest_checkpoint()
        if latest is None:
            log.info("resume=auto: no checkpoint in %s, starting from scratch", run_dir.path)
        return latest
    path = Path(resume)
    if not path.is_file():
        raise UserError(f"--resume {path} not found: give a checkpoint written by train.py or 'auto'")
    return path


def train(cfg, runtime, run_dir, callbacks=()):
    """Run the whole training described by ``cfg`` on ``runtime`` into ``run_dir``. Returns a summary dict.

    The recipe: each step below takes the config's sections (or values) it uses. ``callbacks``: extra
    src.engine.fit.Callback objects, run after the run's own policies.
    Raises :class:`Stopped` after a signal (position saved) and UserError for problems to fix. The main rank
    holds the result folder's lock until it returns (or its process ends).
    """
    with _holding(run_dir, runtime.is_main):
        resume_from = resolve_resume(run_dir, cfg.resume)
        if resume_from is None and runtime.is_main:
            check_fresh_folder(run_dir)
        n_classes, entries, class_names = _training_data(cfg.paths, cfg.data, cfg.arch, runtime,
                                                          n_classes_given="n_classes" in cfg.explicit)
        cfg = cfg.replace(n_classes=n_classes)
        spe = _steps_per_epoch(cfg.optimisation, len(entries), runtime.rank_size)
        if cfg.lr_decay_mode == "plateau" and not cfg.eval_in_training:
            raise UserError("--lr_decay_mode=plateau follows the validation loss: pass --eval_in_training=True")
        eval_data = None
        if cfg.eval_in_training:  # every rank evaluates its share of the windows
            eval_data = eval_dataset_of(cfg.paths, cfg.data, cfg.arch, cfg.evaluation, cfg.eval_batch_size,
                                        cfg.num_workers, runtime.rank_id, runtime.rank_size)
        net = _network(cfg.arch, cfg.paths, runtime, run_dir, cfg.keep_checkpoint_max, fresh=resume_from is None)
        base_lr = create_schedule(cfg.schedule, n_epochs=cfg.n_epochs, steps_per_epoch=spe)
        warn_if_lr_max_unreached(base_lr, cfg.lr_max, cfg.warmup_epochs, cfg.n_epochs)
        start_ft = effective_start_ft(cfg.start_ft, cfg.pretrain_path, given="start_ft" in cfg.explicit)
        optim = replace(cfg.optimisation, start_ft=start_ft, amp_level=training_amp_level(cfg.amp_level, runtime))
        train_step = create_train_step(net, base_lr, optim, device_target=runtime.device_target,
                                       n_classes=n_classes, bf16_missing=runtime.bf16_missing)
        current = fingerprint([getattr(cfg, name) for name in RESULT_SECTIONS], start_ft=start_ft,
                              amp_level=optim.amp_level)
        state = _initial_state(train_step, resume_from, spe, current, cfg.resume_allow, cfg.n_epochs)
        if runtime.is_main:
            save_config(cfg, run_dir.config)
        extras = {MODEL_RECORD_KEY: record_of(cfg, class_names, split=read_split(cfg.annotation_path)).to_json(),
                  ARCHITECTURE_KEY: net.architecture}
        batches = _batch_source(entries, ClipSpec.of(cfg.data, cfg.evaluation), cfg.optimisation, n_classes,
                                cfg.num_workers, runtime, spe)
        return _fit(train_step, net, state, spe, base_lr, batches, eval_data, extras, runtime, run_dir, callbacks,
                    dataset=cfg.dataset, optimisation=cfg.optimisation, schedule=cfg.schedule,
                    evaluation=cfg.evaluation, checkpoints=cfg.checkpoints, n_epochs=cfg.n_epochs)


@contextmanager
def _holding(run_dir, is_main):
    """The main rank holds the result folder's lock for the length of the run."""
    if is_main:
        run_dir.lock()
    try:
        yield
    finally:
        run_dir.unlock()


def _network(arch, paths, runtime, run_dir, keep_max, fresh):
    """The network of ``arch``; rank 0 says what its checkpoints will take on disk; a ``fresh`` run (no resume)
    starts from the pretrained weights ``paths`` names, if any."""
    net = build_model(arch, conv_impl=runtime.conv_impl)
    if runtime.is_main:
        check_disk_for_checkpoints(net, run_dir, keep_max)
    if paths.pretrain_path and fresh:
        load_pretrained(net, paths.pretrain_path, paths.n_pretrain_classes)
    return net


def _fit(train_step, net, state, spe, base_lr, batches, eval_data, extras, runtime, run_dir, callbacks, *, dataset,
         optimisation, schedule, evaluation, checkpoints, n_epochs):
    """From the resumed (or fresh) ``state`` to the end: the LR schedule with plateau reductions (``schedule``),
    the logger, the loop over ``batches``, the run's policies then ``callbacks``. Returns the summary dict."""
    plateau = None
    if schedule.lr_decay_mode == "plateau":
        plateau = Plateau(schedule.plateau_patience, state=state.plateau or None)
    lr = base_lr if plateau is None else _set_lr(train_step, plateau.apply(base_lr))
    start_epoch, _ = state.next_position(spe)
    writer = RankWriter(runtime.rank_id)  # lines and files of the run from rank 0 only
    logger = TrainLogger(run_dir, writer, resume_step=state.global_step(spe), resume_epoch=start_epoch - 1,
                         steps_per_epoch=spe, n_epochs=n_epochs)
    batch, k = optimisation.batch_size, optimisation.accumulation_steps
    effective = batch * runtime.rank_size * k
    out.info(f"training {dataset}: {spe} steps/epoch x {n_epochs} epochs, effective batch {effective} "
             f"({batch} x {runtime.rank_size} rank(s) x {k} accumulation step(s)), {runtime.describe()}")
    loop = Loop(train_step=train_step, net=net, state=state, steps_per_epoch=spe, n_epochs=n_epochs,
                batches=batches, lr=lr, writer=writer)
    stop = StopRequest(runtime.rank_size)
    reduce = None if plateau is None else cb.ReduceOnPlateau(plateau, base_lr, lambda rates: _set_lr(train_step, rates))
    policies = _policies(evaluation, checkpoints, runtime, run_dir, stop, logger, eval_data,
                         spe * effective // runtime.rank_size, extras, reduce)

    def log_step(epoch, step, loss, step_time, data_wait):
        logger.step(epoch, step, (epoch - 1) * spe + step, loss, loop.current_lr(), step_time, data_wait)

    try:
        with stop:
            state = fit(loop, [*policies, *callbacks], log_step, resumed_losses=logger.resumed_losses)
    finally:
        logger.close()
    return dict(steps_per_epoch=spe, global_step=state.global_step(spe), best_top1=state.best_top1,
                best_epoch=state.best_epoch, checkpoints=[str(p) for _, _, p in run_dir.checkpoints()], net=net,
                run_dir=run_dir)


def _training_data(paths, data, arch, runtime, n_classes_given=False):
    """(the class count the head gets, training entries, class names); rank 0 says once what would train badly
    (degenerate data) or misname files (a dataset name that contradicts the annotation). ``n_classes_given``: the
    command line gave --n_classes (then one that contradicts the annotation is an error)."""
    entries, class_names = train_entries(paths, data, arch)
    if runtime.is_main:
        warn_degenerate(paths.annotation_path, paths.video_path, data.sample_duration * data.sample_t_stride,
                        data.input_format)
        check_dataset_name(data.dataset, paths.annotation_path, len(class_names))
    n_classes = classes_to_train(arch.n_classes, n_classes_given, class_names, paths.annotation_path)
    return n_classes, entries, class_names


def check_disk_for_checkpoints(net, run_dir, keep_max):
    """Say what the run's checkpoints will take (keep_max epoch checkpoints and best.ckpt, each the weights and
    the momentum: 2 x 4 bytes a parameter), and refuse a folder whose disk cannot hold what is still to come."""
    import shutil

    size = 8 * sum(int(np.prod(p.shape)) for p in net.get_parameters())
    present = sum(p.stat().st_size for _, _, p in run_dir.checkpoints()) + (
        run_dir.best_ckpt.stat().st_size if run_dir.best_ckpt.is_file() else 0)
    need = (keep_max + 1) * size
    free = shutil.disk_usage(run_dir.path).free
    mb = 1 / 2 ** 20
    if need - present > free:
        raise UserError(f"the checkpoints of this run need {need * mb:.0f} MB ({keep_max} x {size * mb:.1f} MB "
                        f"+ best.ckpt) but {run_dir.path} has {free * mb:.0f} MB free: lower --keep_checkpoint_max "
                        f"or pass a --result_path on a larger disk")
    out.info(f"checkpoints: up to {keep_max} + best.ckpt x {size * mb:.1f} MB = {need * mb:.0f} MB in "
             f"{run_dir.path} ({free * mb:.0f} MB free)")


def _steps_per_epoch(optimisation, n_videos, rank_size):
    """Optimizer steps per epoch of ``optimisation``'s batch_size and accumulation_steps."""
    k = optimisation.accumulation_steps
    spe = steps_per_epoch(n_videos, optimisation.batch_size, rank_size) // k  # optimizer steps
    if spe < 1:
        raise UserError(f"--batch_size {optimisation.batch_size} x --accumulation_steps {k} leaves no full step per "
                        f"epoch ({n_videos} videos on {rank_size} rank(s)): lower them")
    return spe


def _initial_state(train_step, resume_from, spe, current, resume_allow, n_epochs):
    """A fresh TrainState, or the one the resumed checkpoint recorded (its weights and optimizer loaded);
    ``current``: this run's fingerprint; ``resume_allow``: the keys that may differ from the checkpoint's."""
    text = json.dumps(current, sort_keys=True)
    if not resume_from:
        return TrainState(fingerprint=text)
    saved = load_training_state(train_step.cell, resume_from)
    state = TrainState.from_checkpoint(saved, spe)
    check_fingerprint(state.fingerprint, current, resume_allow, resume_from, log.warning)
    state.fingerprint = text
    out.info(f"resumed from {resume_from}: epoch {state.epoch} step {state.step} done, global step "
             f"{train_step.global_step}")
    total = state.lr_steps or n_epochs * spe
    if total != n_epochs * spe:
        out.info(f"n_epochs changed ({total // spe} -> {n_epochs}): the learning-rate schedule is recomputed "
                 f"for {n_epochs} epochs; steps already done keep the rates they had")
    return state


def _policies(evaluation, checkpoints, runtime, run_dir, stop, logger, eval_data, clips_per_epoch, extras,
              reduce=None):
    """The run's callbacks, listed in the order they run (each declares it: src.engine.callbacks), from the
    config's ``evaluation`` and ``checkpoints`` sections; ``reduce``: the plateau callback, if any."""
    evaluate = None
    if eval_data is not None:
        evaluate = cb.Evaluate(lambda net: _evaluate(net, eval_data, evaluation.ignore, runtime),
                               evaluation.eval_interval)
    policies = [evaluate, cb.LogEpoch(logger, clips_per_epoch), reduce, cb.KeepBest(run_dir, extras=extras),
                cb.RecordBest(run_dir), cb.StopOnSignal(stop, run_dir),
                cb.CheckpointSaver(run_dir, checkpoints.save_checkpoint_epochs, checkpoints.save_checkpoint_steps,
                                   checkpoints.keep_checkpoint_max, extras=extras)]
    return [policy for policy in policies if policy is not None]


def _batch_source(entries, spec, optimisation, n_classes, num_workers, runtime, spe):
    """batches(epoch, first_step): the epoch's optimizer steps from first_step on, each ``accumulation_steps``
    micro-batches of clips made by ``spec`` (mixed with mixup / cutmix when ``optimisation`` says so)."""
    k, soft = optimisation.accumulation_steps, mixing(optimisation)

    def batches(epoch, first_step):
        dataset = create_train_dataset(entries, spec, optimisation.seed, optimisation.batch_size, epoch, num_workers,
                                       runtime.rank_id, runtime.rank_size, skip_batches=(first_step - 1) * k)
        iterator = dataset.create_tuple_iterator(num_epochs=1)
        for step in range(first_step, spe + 1):
            micro = [next(iterator) for _ in range(k)]
            if soft:
                global_step = (epoch - 1) * spe + step - 1
                micro = [_mixed(optimisation, n_classes, clip, label, epoch, global_step, i)
                         for i, (clip, label) in enumerate(micro)]
            yield micro

    return batches


def _set_lr(train_step, lr):
    """Put a new LR array into the optimizer (plateau reductions); returns it."""
    import mindspore as ms

    param, = [p for p in train_step.optimizer.get_parameters() if p.name == "learning_rate"]
    param.set_data(ms.Tensor(lr))
    return lr


def _mixed(optimisation, n_classes, clip, label, epoch, global_step, micro):
    """One micro-batch mixed (mixup / cutmix) with draws that depend only on the position in training."""
    import mindspore as ms

    rng = np.random.default_rng([optimisation.seed, epoch, global_step, micro])
    clip, target, _ = mix_batch(clip.asnumpy(), label.asnumpy(), n_classes, optimisation.label_smoothing,
                                optimisation.mixup_alpha, optimisation.cutmix_alpha, rng)
    return ms.Tensor(clip), ms.Tensor(target)


def _evaluate(net, eval_data, ignore, runtime):
    """The validation result of ``net`` as it is now, through its inference network (a snapshot)."""
    from src.models.inference import inference_network

    if runtime.rank_size > 1:
        share_batchnorm_statistics(net)
    net.set_train(False)
    folded = inference_network(net, runtime.conv_impl, runtime.infer_precision)
    result, _ = run_evaluation(mindspore_predictor(folded), eval_data, ignore, verbose=False,
                               rank_size=runtime.rank_size)
    net.set_train(True)
    return result


def share_batchnorm_statistics(net):
    """Give every rank rank 0's BatchNorm moving statistics (the one thing data parallelism does not keep
    equal), so that all ranks evaluate the network rank 0 saves. Training is unaffected: it normalises with
    batch statistics."""
    import mindspore as ms
    from mindspore import ops

    params = [p for p in net.get_parameters() if "moving_" in p.name]
    flat = np.concatenate([p.asnumpy().ravel() for p in params])
    first = ops.AllGather()(ms.Tensor(flat[None])).asnumpy()[0]
    offset = 0
    for p in params:
        size = int(np.prod(p.shape))
        p.set_data(ms.Tensor(first[offset:offset + size].reshape(p.shape)))
        offset += size
