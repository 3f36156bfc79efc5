"""Writing files so that a reader never sees a half-written one: write to a hidden temporary name in the
same folder, then rename (atomic on POSIX). On any failure the temporary file is removed, so a full disk or
a kill leaves either the old file or none, never a truncated one that looks complete."""
import json
import os
from contextlib import contextmanager
from pathlib import Path

from src.errors import UserError


@contextmanager
def atomic_output(path, mkdir=True):
    """``with atomic_output(p) as tmp: write tmp`` -> ``p`` appears complete, or not at all.

    The temporary name keeps the suffix (some writers choose the format by it) and holds the pid, so two
    processes never share one.
    """
    path = Path(path)
    if mkdir:
        make_dirs(path.parent)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or err}): check free space and permissions "
                        f"of {path.parent}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


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


def write_text(path, text):
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, obj, **dump_kwargs):
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, **dump_kwargs)
    return Path(path)
