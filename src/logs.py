"""What a run prints, through the standard logging module: no stream is ever swapped.

- ``out`` (logger ``resnet3d.out``): the lines a user reads as the run's result (the original's step and
  epoch lines, the accuracy lines, ...): stdout.
- ``resnet3d`` and every other logger (MindSpore's Python warnings included): diagnostics, on stderr.
- :func:`log_file` adds a file handler on the root logger for the length of a run, so the run folder's log
  gets both, as whole lines (progress bars write to the terminal only).
"""
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from src.errors import UserError

OUT_NAME = "resnet3d.out"
out = logging.getLogger(OUT_NAME)


class _Console(logging.Handler):
    """Writes to whatever ``sys.<stream>`` is at the time (a test's capture, a redirected stream)."""

    def __init__(self, stream_name, only_out):
        super().__init__()
        self.stream_name = stream_name
        self.addFilter(lambda record: (record.name == OUT_NAME) == only_out)

    def emit(self, record):
        try:
            stream = getattr(sys, self.stream_name)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # logging must never stop a run
            self.handleError(record)


def setup_console(level=logging.INFO):
    """Route ``out`` to stdout and everything else to stderr, message text only. Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(h, _Console) for h in root.handlers):
        root.addHandler(_Console("stdout", only_out=True))
        root.addHandler(_Console("stderr", only_out=False))
    root.setLevel(level)
    logging.captureWarnings(True)


@contextmanager
def log_file(path, header):
    """Append every log line of the run to ``path`` after a ``=== <time> <header>`` line; a UserError that
    ends the run is written there too (``error: ...``). A log that cannot be written costs a warning, not
    the run: the console still has everything."""
    from src.atomic import make_dirs

    try:
        make_dirs(Path(path).parent)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.stream.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {header}\n")
        handler.flush()
    except (OSError, UserError) as err:
        logging.getLogger("resnet3d").warning("warning: cannot write the log %s (%s)", path,
                                              getattr(err, "strerror", None) or err)
        yield
        return
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handleError = lambda record: None  # a full disk must not stop the run over its log copy
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    except UserError as err:  # the entry script prints it to the console; the log gets it too
        handler.stream.write(f"error: {err}\n")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
