"""The training recipe of the original suite, with resume, data-parallel ranks and in-training evaluation.

A straight line: run folder -> datasets -> model -> pretrained weights -> LR schedule -> one-step cell ->
resume -> epochs. The loop is our own (not Model.train) so that it can log data-wait time, stop cleanly
on a signal and restore the exact epoch / step / LR position.

What makes it safe to kill at any moment: every file is written atomically; the epoch checkpoint is
written last and records the best validation result so far, so a resumed run redoes exactly the work
that was lost (best.ckpt included); SIGTERM / SIGINT finish the current step and save the position.
"""
import json
import logging
import math
import os
import signal
import time

import numpy as np

from src.config_keys import KEYS, RESUME_NEUTRAL
from src.data.datasets import create_eval_dataset, create_train_dataset, steps_per_epoch, train_entries
from src.data.presets import ClipSpec
from src.errors import UserError
from src.eval.loop import mindspore_predictor, run_evaluation
from src.models.resnet3d import ModelSpec, build_model
from src.rundir import RunDir
from src.train.logger import TrainLogger
from src.train.lr import Plateau, lr_from_config
from src.train.mix import mix_batch
from src.train.signals import StopRequest
from src.train.step import mixing, train_step_from_config
from src.weights.checkpoint import load_pretrained, load_training_state, save_checkpoint

log = logging.getLogger("resnet3d")


class Stopped(Exception):
    """Training stopped on a signal after saving its position; ``code`` is the exit code (128 + signal)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def result_config(cfg):
    """The keys that decide what training computes, as JSON (stored in every training checkpoint)."""
    return json.dumps({k: cfg[k] for k in KEYS if k not in RESUME_NEUTRAL}, sort_keys=True)


def check_resume_config(cfg, saved, path):
    """A resumed run must compute what the saved one did: a changed key is an error unless resume_allow
    names it."""
    if saved is None:
        log.warning("%s records no config (written by an older version): resuming without checking it", path)
        return
    saved = json.loads(saved)
    changed = [k for k in saved if k in cfg and cfg[k] != saved[k] and k not in cfg.resume_allow]
    if changed:
        listed = ", ".join(f"{k} {saved[k]!r} -> {cfg[k]!r}" for k in changed)
        raise UserError(f"--resume: the config differs from the run in {path.parent} ({listed}); resume with "
                        f"its values, start a new run in another --result_path, or accept the change on "
                        f"purpose with --resume_allow=[{','.join(changed)}]")
    for k in cfg.resume_allow:
        if k in saved and cfg[k] != saved[k]:
            log.warning("resume: %s changed on purpose: %r -> %r", k, saved[k], cfg[k])


def check_fresh_folder(run_dir):
    """A new (non-resume) run must not mix with another run's checkpoints."""
    found = run_dir.checkpoints(any_dataset=True)
    if found:
        names = ", ".join(p.name for _, _, p in found[-3:])
        raise UserError(f"{run_dir.path} already holds training checkpoints of another run ({len(found)}: ... "
                        f"{names}): continue it with --resume=auto, or pass another --result_path")


def resolve_resume(run_dir, resume):
    """'' -> None; 'auto' -> the latest checkpoint of this folder (None if there is none); else the path."""
    from pathlib import Path

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


def check_finite_state(train_step, where, lr):
    """Refuse to save (and stop) a diverged state: one non-finite tensor poisons every later result."""
    bad = [p.name for p in train_step.get_parameters() if not np.isfinite(p.asnumpy()).all()]
    if bad:
        raise UserError(f"training diverged at {where}: {len(bad)} tensors hold NaN/inf (e.g. {', '.join(bad[:3])}) "
                        f"at learning rate {lr:.4g}; nothing was saved for this step. Lower --lr_max (or raise "
                        f"--warmup_epochs) and resume from the last checkpoint with --resume=auto")


def kill_point(point, epoch):
    """Fault-injection hook of the kill tests: RESNET3D_KILL_AT=<point>:<epoch> SIGKILLs this process there."""
    if os.environ.get("RESNET3D_KILL_AT") == f"{point}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


def train(cfg, runtime, on_epoch_end=None, print_fn=print):
    """Run the whole training described by ``cfg`` on ``runtime``. Returns a summary dict.

    Raises :class:`Stopped` after a signal (position saved) and UserError for problems to fix. The main rank
    holds the result folder's lock until it returns (or its process ends).
    """
    run_dir = RunDir(cfg.result_path, cfg.dataset)
    if runtime.is_main:
        run_dir.lock()
    try:
        return _train(cfg, runtime, run_dir, on_epoch_end, print_fn)
    finally:
        run_dir.unlock()


def _train(cfg, runtime, run_dir, on_epoch_end, print_fn):
    is_main = runtime.is_main
    resume_from = resolve_resume(run_dir, cfg.resume)
    if resume_from is None and is_main:
        check_fresh_folder(run_dir)

    entries, _ = train_entries(cfg)
    k = cfg.accumulation_steps
    spe = steps_per_epoch(len(entries), cfg.batch_size, runtime.rank_size) // k  # optimizer steps
    if spe < 1:
        raise UserError(f"--batch_size {cfg.batch_size} x --accumulation_steps {k} leaves no full step per epoch "
                        f"({len(entries)} videos on {runtime.rank_size} rank(s)): lower them")
    eval_data = None
    if cfg.eval_in_training:  # every rank evaluates its share of the windows
        eval_data = create_eval_dataset(cfg, cfg.eval_subset, runtime.rank_id, runtime.rank_size)
    clip_spec = ClipSpec.from_config(cfg)

    net = build_model(ModelSpec.from_config(cfg), conv_impl=runtime.conv_impl)
    if cfg.pretrain_path and resume_from is None:
        load_pretrained(net, cfg.pretrain_path, cfg.n_pretrain_classes)
    if cfg.lr_decay_mode == "plateau" and not cfg.eval_in_training:
        raise UserError("--lr_decay_mode=plateau follows the validation loss: pass --eval_in_training=True")
    base_lr = lr_from_config(cfg, spe)
    lr = base_lr
    train_step = train_step_from_config(cfg, net, lr)
    plateau = None

    start_epoch, start_step, best, best_epoch, plateau_state = 1, 0, -1.0, 0, None
    if resume_from:
        state = load_training_state(train_step.cell, resume_from)
        check_resume_config(cfg, state.get("config"), resume_from)
        start_epoch, start_step = _position(state, spe)
        best, best_epoch = float(state.get("best_top1", -1.0)), int(state.get("best_epoch", 0))
        plateau_state = state.get("plateau")
        print_fn(f"resumed from {resume_from}: epoch {start_epoch} step {start_step} done, global step "
                 f"{train_step.global_step}")
        _say_schedule(state, cfg, spe, print_fn)
        if start_step == spe:
            start_epoch, start_step = start_epoch + 1, 0
    global_step = (start_epoch - 1) * spe + start_step
    if cfg.lr_decay_mode == "plateau":
        plateau = Plateau(cfg.plateau_patience, state=plateau_state)
        lr = _set_lr(train_step, plateau.apply(base_lr))
    if is_main:
        from src.config import save_config

        save_config(cfg, run_dir.config)
    logger = TrainLogger(run_dir, write=is_main, print_fn=print_fn if is_main else (lambda *_: None),
                         resume_step=global_step, resume_epoch=start_epoch - 1)
    effective = cfg.batch_size * runtime.rank_size * k
    print_fn(f"training {cfg.dataset}: {spe} steps/epoch x {cfg.n_epochs} epochs, effective batch {effective} "
             f"({cfg.batch_size} x {runtime.rank_size} rank(s) x {k} accumulation step(s)), {runtime.describe()}")

    def current_lr():
        """The rate of the last optimizer step (skipped overflow steps do not advance the schedule)."""
        return float(lr[max(train_step.global_step, 1) - 1])

    def save(epoch, step, checked=False):
        if not checked:
            check_finite_state(train_step.cell, f"epoch {epoch} step {step}", current_lr())
        if is_main:
            save_checkpoint(train_step.cell, run_dir.epoch_checkpoint(epoch, step), append_dict={
                "epoch_num": epoch, "step_num": step, "best_top1": float(best), "best_epoch": best_epoch,
                "lr_steps": len(lr), "config": result_config(cfg), "plateau": plateau.state() if plateau else "",
                "architecture": net.architecture})
            run_dir.rotate(cfg.keep_checkpoint_max)

    def stopped(epoch, step):
        print_fn(f"stopped by {stop.name} at epoch {epoch} step {step}; state saved to "
                 f"{run_dir.epoch_checkpoint(epoch, step)}; resume with --resume=auto")
        raise Stopped(stop.exit_code)

    soft_targets = mixing(cfg)
    stop = StopRequest(runtime.rank_size)
    with stop:
        for epoch in range(start_epoch, cfg.n_epochs + 1):
            first = start_step + 1 if epoch == start_epoch else 1
            dataset = create_train_dataset(entries, clip_spec, cfg.seed, cfg.batch_size, epoch, cfg.num_workers,
                                           runtime.rank_id, runtime.rank_size, skip_batches=(first - 1) * k)
            iterator = dataset.create_tuple_iterator(num_epochs=1)
            epoch_start, data_wait, overflows = time.time(), 0.0, 0
            losses = list(logger.resumed_losses) if epoch == start_epoch else []
            for step in range(first, spe + 1):
                t0 = time.time()
                batches = [next(iterator) for _ in range(k)]
                if soft_targets:
                    batches = [_mixed(cfg, clip, label, epoch, global_step, i)
                               for i, (clip, label) in enumerate(batches)]
                t1 = time.time()
                result = train_step(batches)
                loss = result.loss
                global_step += 1
                if result.overflow:
                    overflows += 1
                    print_fn(f"overflow: step skipped, loss scale {result.scale_before:g} -> {result.scale_after:g}")
                if not math.isfinite(loss) and not result.overflow:
                    raise UserError(f"training diverged at epoch {epoch} step {step}: the loss is {loss} at "
                                    f"learning rate {current_lr():.4g}; no checkpoint was written for "
                                    f"it. Lower --lr_max (or raise --warmup_epochs) and resume with --resume=auto")
                data_wait += t1 - t0
                losses.append(loss)
                logger.step(epoch, step, global_step, loss, current_lr(), time.time() - t0, t1 - t0)
                if stop.poll() and step < spe:
                    save(epoch, step)
                    stopped(epoch, step)
                if cfg.save_checkpoint_steps and global_step % cfg.save_checkpoint_steps == 0 and step < spe:
                    save(epoch, step)
            epoch_time = time.time() - epoch_start
            due = epoch % cfg.eval_interval == 0 or epoch == cfg.n_epochs
            val = None
            if eval_data is not None and due:
                try:
                    val = _evaluate(net, eval_data, cfg.ignore, runtime.rank_size, runtime.conv_impl)
                except UserError:
                    save(epoch, spe)  # the epoch's training is not lost to a bad validation video
                    raise
            logger.epoch(epoch, spe, losses, epoch_time, spe * effective // runtime.rank_size, data_wait,
                         current_lr(), val, overflows)
            kill_point("after_eval", epoch)
            if plateau is not None and val is not None and plateau.step(val.loss, train_step.global_step):
                lr = _set_lr(train_step, plateau.apply(base_lr))
                print_fn(f"plateau: validation loss {val.loss:.4f} has not improved for more than "
                         f"{cfg.plateau_patience} epochs: learning rate {current_lr():.4g} -> "
                         f"{float(lr[min(train_step.global_step, len(lr) - 1)]):.4g} from step "
                         f"{train_step.global_step + 1}")
            new_best = val is not None and val.top1 > best
            if new_best:
                check_finite_state(train_step.cell, f"epoch {epoch} (best)", current_lr())
                best, best_epoch = val.top1, epoch
                _save_best(run_dir, net, epoch, val)
                kill_point("after_best", epoch)
                print_fn(f"new best video top-1 {100 * best:.1f}% at epoch {epoch}: saved {run_dir.best_ckpt}")
            # written last: it records the best so far, so a kill before it redoes this epoch entirely
            if epoch % cfg.save_checkpoint_epochs == 0 or epoch == cfg.n_epochs or stop.flag:
                save(epoch, spe, checked=new_best)
            if stop.flag:
                stopped(epoch, spe)
            if on_epoch_end is not None:
                on_epoch_end(epoch, train_step)
    return dict(steps_per_epoch=spe, global_step=global_step, best_top1=best, best_epoch=best_epoch,
                checkpoints=[str(p) for _, _, p in run_dir.checkpoints()], net=net, run_dir=run_dir)


def _set_lr(train_step, lr):
    """Put a new LR array into the optimizer (plateau reductions); returns it."""
    import mindspore as ms

    param, = [p for p in train_step.optimizer.get_parameters() if p.name == "learning_rate"]
    param.set_data(ms.Tensor(lr))
    return lr


def _mixed(cfg, clip, label, epoch, global_step, micro):
    """One micro-batch mixed (mixup / cutmix) with draws that depend only on the position in training."""
    import mindspore as ms

    rng = np.random.default_rng([cfg.seed, epoch, global_step, micro])
    clip, target, _ = mix_batch(clip.asnumpy(), label.asnumpy(), cfg.n_classes, cfg.label_smoothing,
                                cfg.mixup_alpha, cfg.cutmix_alpha, rng)
    return ms.Tensor(clip), ms.Tensor(target)


def _position(state, spe):
    """(epoch, steps done in it) of a training checkpoint; older ones hold whole epochs only."""
    epoch = int(state["epoch_num"])
    return (epoch, int(state["step_num"])) if "step_num" in state else (epoch, spe)


def _say_schedule(state, cfg, spe, print_fn):
    total = int(state.get("lr_steps", cfg.n_epochs * spe))
    if total != cfg.n_epochs * spe:
        print_fn(f"n_epochs changed ({total // spe} -> {cfg.n_epochs}): the learning-rate schedule is recomputed "
                 f"for {cfg.n_epochs} epochs; steps already done keep the rates they had")


def _evaluate(net, eval_data, ignore, rank_size, conv_impl):
    """The validation result of ``net`` as it is now, through its inference network (a snapshot)."""
    from src.models.inference import inference_network

    if rank_size > 1:
        share_batchnorm_statistics(net)
    net.set_train(False)
    folded = inference_network(net, conv_impl)
    result, _ = run_evaluation(mindspore_predictor(folded), eval_data, ignore, verbose=False, rank_size=rank_size)
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


def _save_best(run_dir, net, epoch, val):
    from src.atomic import write_json

    save_checkpoint(net, run_dir.best_ckpt, append_dict={"architecture": net.architecture})
    kill_point("between_best_files", epoch)
    metrics = dict(epoch=epoch, line=val.line(), **{k: v for k, v in val.to_dict().items()
                                                     if k != "video_predictions"})
    write_json(run_dir.best_metrics, metrics, indent=1)
