"""Fault injection for the kill tests, and nothing else: ``RESNET3D_KILL_AT=<point>:<epoch>`` SIGKILLs the
training process at a named point of an epoch's end (after_eval, between_best_files, after_best), so the
tests can check that a resumed run equals an uninterrupted one bit for bit."""
import os
import signal

ENV = "RESNET3D_KILL_AT"


def point(name: str, epoch: int) -> None:
    if os.environ.get(ENV) == f"{name}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)
