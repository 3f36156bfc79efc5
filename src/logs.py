"""What a run prints, through the standard logging module: no stream is ever swapped.

- ``out`` (logger ``resnet3d.out``): the lines a user reads as the run's result (the original's step and
  epoch lines, the accuracy lines, ...): stdout.
- ``resnet3d`` and every other logger (MindSpore's Python warnings included): diagnostics, on stderr.
- :func:`log_file` adds a file handler on the root logger for the length of a run, so the run folder's log
  gets both, as whole lines (progress bars write to the terminal only). The log is opened without following
  a link: a link (or anything but a file of its own) planted at its name is refused, its target untouched.
- :class:`RankWriter`: the one rank-aware writer of a distributed run: result lines and file writes happen on
  rank 0 only, so every line and every file exists once.
"""
import logging
import os
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from src.atomic import NotOwnFile, check_own_file, make_dirs, open_own_file
from src.errors import UserError

OUT_NAME = "resnet3d.out"
out = logging.getLogger(OUT_NAME)


class _Console(logging.Handler):
    """Writes to whatever ``sys.<stream>`` is at the time (a test's capture, a redirected stream)."""

    def __init__(self, stream_name, only_out):
        super().__init__()
        self.stream_name = stream_name
        # a line logged with extra={"log_only": True} goes to the run's log file, not the console (a progress
        # bar stands for the step lines on a terminal)
        self.addFilter(lambda record: (record.name == OUT_NAME) == only_out and not getattr(record, "log_only", False))

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


class RankWriter:
    """Result lines and files of a run, from one rank: on rank 0 ``say`` logs the line to ``out`` and ``write``
    calls the writer; on every other rank both do nothing (those ranks compute and check the same things, so
    each line and file would exist once per rank). ``say``: where the lines go (default ``out.info``)."""

    def __init__(self, rank_id: int = 0, say=None):
        self.rank_id = rank_id
        self._say = say or out.info

    @property
    def is_main(self) -> bool:
        return self.rank_id == 0

    def say(self, line: str) -> None:
        if self.is_main:
            self._say(line)

    def write(self, writer, *args, **kwargs):
        """``writer(*args, **kwargs)`` on rank 0 (its result); None elsewhere."""
        return writer(*args, **kwargs) if self.is_main else None


def _refuse_planted(path, kind):
    """The UserError for what stands at ``path`` instead of a log's own file (NotOwnFile's ``kind``)."""
    if kind == "link":
        what = f"is a symbolic link (to {os.readlink(path)}): logs are never written through a link"
    elif kind == "special":
        what = "is not a regular file"
    else:
        what = "has another name (a hard link): logs are only appended to a file of their own"
    return UserError(f"the log {path} {what}; remove it, or write the results into another folder")


def _open_log(path):
    """``path`` opened for appending (created if absent, the folder too) without following a link; None after
    a warning when it cannot be written (a full disk, a read-only folder)."""
    try:
        try:
            make_dirs(Path(path).parent)
            return open(open_own_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")
        except (OSError, UserError) as err:
            with suppress(OSError):  # a FIFO without a reader, a folder: what stands there is the reason
                check_own_file(os.lstat(path))
            logging.getLogger("resnet3d").warning("warning: cannot write the log %s (%s)", path,
                                                  getattr(err, "strerror", None) or err)
            return None
    except NotOwnFile as planted:
        raise _refuse_planted(path, planted.kind) from None


@contextmanager
def log_file(path, header):
    """Append every log line of the run to ``path`` after a ``=== <time> <header>`` line; a UserError that
    ends the run is written there too (``error: ...``). A log that cannot be written costs a warning, not
    the run: the console still has everything. What someone planted at ``path`` (a link, ...) is a UserError
    naming it, before anything is written."""
    stream = _open_log(path)
    if stream is None:
        yield
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handleError = lambda record: None  # a full disk must not stop the run over its log copy
    with suppress(OSError):
        stream.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {header}\n")
        stream.flush()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    except UserError as err:  # the entry script prints it to the console; the log gets it too
        with suppress(OSError):
            stream.write(f"error: {err}\n")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        with suppress(OSError):
            stream.close()
