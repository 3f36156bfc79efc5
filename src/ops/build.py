"""Build the fast CPU op library: ``python -m src.ops.build [--force] [--strict] [--verbose]`` (``make ops``).

One g++ command (print it with --verbose) compiles src/ops/csrc/*.cc into build/ops/libconv3d_dnnl.so,
linked with an rpath to the oneDNN inside the MindSpore wheel (mindspore/lib/libdnnl.so.3). The headers
come from the ``onednn-devel`` wheel pinned in requirements-ops.txt (headers only, installed without its
runtime). No package index carries the headers of the exact oneDNN release MindSpore 2.10 bundles (3.10.1):
onednn-devel jumps from 3.9.1 to 3.11.2, whose threadpool interface adds a virtual method the 3.10 library
does not have. So we build against the newest headers not newer than the library, in its major version,
which oneDNN's compatibility rule covers, and refuse anything else (see ``check_versions``). The library
records the oneDNN release it was linked with; the loader (src/ops/fast_conv3d.py) refuses to use it in a
process whose oneDNN reports another one.

Kept as a Python script rather than CMake: every input (MindSpore's library, the header wheel, the
versions to compare) is found through the Python environment, and the whole build is one command.

Rebuilds when a source, the command, the compiler, MindSpore, its oneDNN or the headers change
(``fingerprint``). A failed build is an error (exit 1, the compiler's first error line) under ``CI=true``,
``STRICT=1`` or ``--strict``; otherwise one warning says how much slower the native fallback is, exit 0.
"""
import ctypes
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from src.ops.paths import HEADERS, SOURCES, default_library_path

FLAGS = ["-O3", "-fopenmp", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
         "-Wl,--no-undefined"]
HEADER_PACKAGE = "onednn-devel"  # pinned in requirements-ops.txt
# Without the op, from README "Performance": training at 0.66x PyTorch's speed instead of 1.21x,
# inference at 1.3-1.7x ONNX Runtime's time instead of 0.76-0.79x.
FALLBACK_COST = ("native convolutions run instead: training about 1.8x slower (0.66x PyTorch's speed "
                 "instead of 1.2x), inference 1.7-2.2x slower (1.3-1.7x ONNX Runtime's time instead of 0.8x)")


class BuildError(RuntimeError):
    """The library cannot be built; the message's first line says why."""


def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1")


def strict_mode(args=()):
    """Whether a failed build must fail the caller: CI=true, STRICT=1 or --strict."""
    return "--strict" in args or in_ci() or os.environ.get("STRICT", "") not in ("", "0")


def compiler():
    return os.environ.get("CXX", "g++")


def mindspore_library():
    """MindSpore's bundled oneDNN (the wheel ships libdnnl.so.3 without a libdnnl.so symlink)."""
    try:
        dist = importlib.metadata.distribution("mindspore")
    except importlib.metadata.PackageNotFoundError as err:
        raise BuildError("python package 'mindspore' not installed: run 'make setup'") from err
    path = Path(dist.locate_file("mindspore/lib/libdnnl.so.3"))
    if not path.exists():
        raise BuildError(f"{path} not found (MindSpore {dist.version} no longer bundles oneDNN there)")
    return path, dist.version


def header_dir():
    """The include folder holding oneapi/dnnl/dnnl.hpp from the pinned onednn-devel wheel."""
    try:
        dist = importlib.metadata.distribution(HEADER_PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise BuildError(f"oneDNN headers missing: pip install --no-deps -r requirements-ops.txt "
                         f"(python package '{HEADER_PACKAGE}')") from err
    candidates = [dist.locate_file(f) for f in dist.files or () if str(f).endswith("oneapi/dnnl/dnnl_version.h")]
    candidates.append(dist.locate_file("include/oneapi/dnnl/dnnl_version.h"))  # pip install --target
    for path in map(Path, candidates):
        if path.exists():
            return path.resolve().parents[2]
    raise BuildError(f"{HEADER_PACKAGE} {dist.version} is installed but oneapi/dnnl/dnnl_version.h is missing")


def header_version(include):
    text = (include / "oneapi" / "dnnl" / "dnnl_version.h").read_text()
    found = {k: int(v) for k, v in re.findall(r"#define DNNL_VERSION_(MAJOR|MINOR|PATCH) (\d+)", text)}
    return found["MAJOR"], found["MINOR"], found["PATCH"]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int)]


def loaded_dnnl_version(lib):
    """(major, minor, patch) that the oneDNN reachable from ``lib`` (a ctypes.CDLL) reports."""
    lib.dnnl_version.restype = ctypes.POINTER(_Version)
    v = lib.dnnl_version().contents
    return v.major, v.minor, v.patch


def pack(version):
    major, minor, patch = version
    return major * 10000 + minor * 100 + patch


def unpack(packed):
    return packed // 10000, packed // 100 % 100, packed % 100


def dotted(version):
    return ".".join(map(str, version))


def check_versions(headers, library):
    """Headers may be older than the library within its major version (oneDNN keeps the ABI
    backward-compatible there), never newer: newer headers declare what the library lacks."""
    if headers[0] != library[0] or headers[1:] > library[1:]:
        raise BuildError(f"oneDNN headers {dotted(headers)} do not fit the linked library {dotted(library)}: "
                         f"pin {HEADER_PACKAGE} to a {library[0]}.x release not newer than {dotted(library)} "
                         f"in requirements-ops.txt")


def compiler_version(cxx):
    try:
        done = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    except OSError as err:
        raise BuildError(f"compiler '{cxx}' cannot run: {err}") from err
    lines = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 0:
        raise BuildError(f"compiler '{cxx} --version' failed (exit {done.returncode}): "
                         f"{lines[0] if lines else 'no output'}")
    return f"{shutil.which(cxx) or cxx}: {lines[0] if lines else ''}"


def inputs():
    """Everything the build depends on: paths, versions, the command (for the output ``{out}``)."""
    cxx = compiler()
    ms_lib, ms_version = mindspore_library()
    include = header_dir()
    headers = header_version(include)
    library = loaded_dnnl_version(ctypes.CDLL(str(ms_lib)))
    check_versions(headers, library)
    command = [cxx, *FLAGS, f"-DCONV3D_LINKED_DNNL={pack(library)}", f"-I{include}", *map(str, SOURCES),
               "-o", "{out}", f"-Wl,-rpath,{ms_lib.parent}", str(ms_lib)]
    return {"command": command, "compiler": compiler_version(cxx), "mindspore": ms_version,
            "linked": library, "headers": headers, "include": include}


def fingerprint(info):
    """Hash of our sources, the command, the compiler, MindSpore and the oneDNN headers' contents."""
    h = hashlib.sha256()
    for part in (" ".join(info["command"]), info["compiler"], info["mindspore"], dotted(info["linked"]),
                 dotted(info["headers"])):
        h.update(part.encode() + b"\0")
    for f in (*SOURCES, *HEADERS, *sorted((info["include"] / "oneapi" / "dnnl").rglob("*.h*"))):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def stamp_path(output):
    return Path(output).with_suffix(".sha256")


def stale_reason(output=None):
    """None when ``output`` (default: build/ops/libconv3d_dnnl.so) is built from the current inputs,
    else why not."""
    output = Path(output or default_library_path())
    if not output.exists():
        return f"{output} does not exist"
    stamp = stamp_path(output)
    if not stamp.exists() or stamp.read_text() != fingerprint(inputs()):
        return f"{output} was built from other sources, compiler, MindSpore or oneDNN headers"
    return None


def build(output=None, force=False):
    """Compile if needed; return the library path. Raises BuildError (first line: the cause)."""
    output = Path(output or default_library_path())
    info = inputs()
    digest = fingerprint(info)
    stamp = stamp_path(output)
    if not force and output.exists() and stamp.exists() and stamp.read_text() == digest:
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp.so")
    cmd = [str(tmp) if part == "{out}" else part for part in info["command"]]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        first = next((line for line in lines if "error" in line), lines[0] if lines else "no output")
        raise BuildError(f"{first}\n{done.stderr[-3000:]}")
    os.replace(tmp, output)  # atomic: a running process keeps the old file
    stamp.write_text(digest)
    return output


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if "--verbose" in args:
        try:
            info = inputs()
            print(f"oneDNN: linked {dotted(info['linked'])} (MindSpore {info['mindspore']}), "
                  f"headers {dotted(info['headers'])} from {info['include']}\n{' '.join(info['command'])}")
        except BuildError:
            pass  # build() reports it below
    try:
        path = build(force="--force" in args)
    except (BuildError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if strict_mode(args):
            print(f"error: fast CPU op build failed: {first}", file=sys.stderr)
            rest = str(err).strip().splitlines()[1:]
            if rest != [first]:  # the compiler's whole output, when it says more than that line
                print("\n".join(rest), file=sys.stderr)
            return 1
        print(f"WARNING: fast CPU op not built ({first}); {FALLBACK_COST}. "
              f"'make ops STRICT=1' fails on this and prints the compiler's output.", file=sys.stderr)
        return 0
    print(f"fast CPU op: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
