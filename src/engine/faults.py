"""Fault injection for the kill tests, and nothing else: ``RESNET3D_KILL_AT=<point>:<epoch>`` SIGKILLs the
training process at a named point of an epoch's end, so the tests can check that a resumed run equals an
uninterrupted one bit for bit. The points are declared here, each as the callback it follows and whether it
is reached this epoch; src.engine.fit calls :func:`after` after every callback of an epoch's end, its only
caller (no policy knows of them)."""
import os
import signal

ENV = "RESNET3D_KILL_AT"

# point -> (the callback class it follows, whether it is reached this epoch (the Loop's shared fields))
POINTS = {
    "after_eval": ("LogEpoch", lambda loop: True),  # the validation result computed and logged
    "between_best_files": ("KeepBest", lambda loop: loop.new_best),  # best.ckpt written, best_metrics.json not
    "after_best": ("RecordBest", lambda loop: loop.new_best),  # both written, the epoch checkpoint not yet
}


def after(callback, loop, epoch: int) -> None:
    """SIGKILL this process if RESNET3D_KILL_AT names a point that follows ``callback`` at ``epoch``."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    for name, (follows, reached) in POINTS.items():
        if wanted == f"{name}:{epoch}" and type(callback).__name__ == follows and reached(loop):
            os.kill(os.getpid(), signal.SIGKILL)
