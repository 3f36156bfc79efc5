"""Writing files and folders so that a reader never sees a half-written one: write under a temporary name
in the same folder, flush it to disk (fsync), then rename (atomic on POSIX). On any failure the temporary
is removed, so a full disk or an error leaves either the old file or none, never a truncated one that looks
complete; what a killed process leaves behind is hidden and ``remove_stale_temps`` knows it.

Every temporary has the one name ``temp_path`` gives: ``.<stem>.tmp<pid><suffix>`` next to the target
(hidden; the suffix kept, since some writers choose the format by it; the writer's pid, so two processes
never share one and a cleanup can tell a live writer's from a dead one's). A temporary is created
exclusively (O_EXCL), never through a symbolic link: whatever stands at its name (a dead writer's with a
recycled pid, or a link someone planted) is removed first, a link as a link, its target untouched.
"""
import errno
import json
import os
import re
import shutil
import stat
from contextlib import contextmanager, suppress
from pathlib import Path

from src.errors import UserError

_TEMP_NAME = re.compile(r"\.(?P<stem>.*)\.tmp(?P<pid>[0-9]+)(?P<rest>.*)")


def temp_path(path, tag="", pid=None):
    """The temporary name of ``path``: ``.<stem>.tmp<pid><tag><suffix>`` in its folder (``tag``: a second
    name for the same target, e.g. the old folder that atomic_dir moves aside)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp{os.getpid() if pid is None else pid}{tag}{path.suffix}")


def _clear(path):
    """Remove what stands at ``path`` without following a link: a folder with its content, anything else
    (a link, a file) as the entry itself."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _claim(tmp):
    """Create the empty temporary file ``tmp`` for this writer alone (O_CREAT | O_EXCL | O_NOFOLLOW):
    the writer then opens a regular file of its own, never a planted link's target."""
    _clear(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    os.close(fd)


def _claim_dir(tmp):
    _clear(tmp)
    tmp.mkdir()  # mkdir never follows a link: it fails on any entry at the name


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder):
    with suppress(OSError):  # makes the rename itself durable; some filesystems refuse it on a folder
        _fsync(folder)


def _cannot_write(path, err):
    return UserError(f"cannot write {path} ({err.strerror or err}): check free space and permissions "
                     f"of {Path(path).parent}")


def commit(tmp, path, fsync=True):
    """Give the finished file ``tmp`` its final name ``path`` (fsync first unless ``fsync`` is False)."""
    try:
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise _cannot_write(path, err) from None
    if fsync:
        _fsync_folder(Path(path).parent)


@contextmanager
def atomic_output(path, mkdir=True, fsync=True):
    """``with atomic_output(p) as tmp: write tmp`` -> ``p`` appears complete, or not at all.

    ``fsync=False`` for files a re-run simply makes again, where a flush per file would cost more than
    the work (one result file per clip).
    """
    path = Path(path)
    if mkdir:
        make_dirs(path.parent)
    tmp = temp_path(path)
    try:
        _claim(tmp)
        yield tmp
        commit(tmp, path, fsync)
    except OSError as err:
        raise _cannot_write(path, err) from None
    finally:
        with suppress(OSError):
            _clear(tmp)


@contextmanager
def atomic_dir(path, fsync=True):
    """``with atomic_dir(d) as tmp: fill the folder tmp`` -> the folder ``d`` appears complete (replacing
    an old one), or is left as it was. What an earlier, killed writer of ``d`` left is removed first.
    (The folder's entries are flushed, not each file's data: a re-run redoes what a power loss spoilt.)"""
    path = Path(path)
    make_dirs(path.parent)
    remove_stale_temps(path.parent, path)
    tmp, old = temp_path(path), temp_path(path, tag="old")
    try:
        _claim_dir(tmp)
        yield tmp
        if fsync:
            _fsync_folder(tmp)
        if os.path.lexists(path):  # a link at ``path`` is moved aside and removed as a link
            _clear(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if fsync:
            _fsync_folder(path.parent)
    except OSError as err:
        raise _cannot_write(path, err) from None
    finally:
        for leftover in (tmp, old):
            with suppress(OSError):
                _clear(leftover)


@contextmanager
def scratch_dir(path):
    """A private, empty folder next to ``path`` under its temporary name, removed on exit: for writers
    that must write into a folder of their own before the result is committed to ``path``."""
    path = Path(path)
    remove_stale_temps(path.parent, path)
    work = temp_path(path, tag="work")
    try:
        _claim_dir(work)
    except OSError as err:
        raise _cannot_write(path, err) from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; a number no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder, target=None):
    """Remove the temporaries (files and folders) that killed writers left in ``folder``: those of the one
    pattern whose process is gone (for ``target``: only its own). Returns the removed paths."""
    target = Path(target) if target is not None else None
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        if target is not None and (match["stem"] != target.stem or not match["rest"].endswith(target.suffix)):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def make_dirs(folder):
    """mkdir -p with a one-line error (a file in the way, a read-only parent, a full disk)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{folder} exists and is not a folder: choose another path") from None
    except OSError as err:
        raise UserError(f"cannot create folder {folder} ({err.strerror or err}): check its parent's "
                        f"permissions and free space") from None
    if not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder: choose another path")
    return folder


class NotOwnFile(Exception):
    """What stands at a path is not a file of one's own, and is left untouched: ``kind`` is "link" (a symbolic
    link, never followed), "special" (a FIFO, a device, a folder) or "links" (a file with other names: a hard
    link's other file would be written); ``info``: its stat (None for a link found by open)."""

    def __init__(self, kind, info=None):
        super().__init__(kind)
        self.kind, self.info = kind, info


def check_own_file(info):
    """NotOwnFile unless ``info`` (os.lstat / os.fstat) is a regular file with one name."""
    if stat.S_ISLNK(info.st_mode):
        raise NotOwnFile("link", info)
    if not stat.S_ISREG(info.st_mode):
        raise NotOwnFile("special", info)
    if info.st_nlink != 1:
        raise NotOwnFile("links", info)


def open_own_file(path, flags, mode=0o644):
    """A descriptor of ``path`` opened with ``flags`` (os.O_WRONLY | os.O_CREAT, ...) never through a symbolic
    link and never blocking on a FIFO, if it is a regular file with one name; else NotOwnFile. Each caller
    words its own error; any other OSError of the open is raised as it is."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotOwnFile("link") from None
        raise
    try:
        check_own_file(os.fstat(fd))
    except NotOwnFile:
        os.close(fd)
        raise
    os.set_blocking(fd, True)
    return fd


def writable_dir(folder, hint="choose another folder, or make it writable"):
    """``folder``, created if need be (make_dirs), once a file could really be created in it: a read-only
    file system or folder is one UserError naming it and ``hint`` (os.access misses some of them, and
    says yes to root)."""
    folder = make_dirs(folder)
    probe = temp_path(folder / "write-probe")
    try:
        _claim(probe)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write in {folder} ({err.strerror or err}): {hint}") from None
    return folder


def write_text(path, text):
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, obj, **dump_kwargs):
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, **dump_kwargs)
    return Path(path)
