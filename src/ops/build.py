"""Build the fast 3-D convolution library: ``python -m src.ops.build`` (run by ``make ops``).

Compiles src/ops/csrc/*.cc (training and inference entry points) into one library against
MindSpore's bundled oneDNN (mindspore/lib/libdnnl.so.3, linked with an rpath) using the oneDNN
headers shipped in the torch wheel (needed at build time only; torch is located, not imported).
Rebuilds only when a source, header or flag changes. A failed build prints one warning and exits 0:
the model then runs native convolutions.
"""
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from src.ops.paths import HEADERS, SOURCES, default_library_path

CXX = os.environ.get("CXX", "g++")
FLAGS = ["-O3", "-fopenmp", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wl,--no-undefined"]


def _package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"python package '{name}' not found")
    return Path(list(spec.submodule_search_locations)[0])


def build_command(output):
    ms_lib = _package_dir("mindspore") / "lib"
    include = _package_dir("torch") / "include"
    if not (ms_lib / "libdnnl.so.3").exists():
        raise RuntimeError(f"{ms_lib / 'libdnnl.so.3'} not found")
    if not (include / "oneapi" / "dnnl" / "dnnl.hpp").exists():
        raise RuntimeError(f"oneDNN headers not found under {include}")
    # link the exact file name: the wheel ships libdnnl.so.3 without a libdnnl.so symlink
    return [CXX, *FLAGS, f"-I{include}", *map(str, SOURCES), "-o", str(output),
            f"-Wl,-rpath,{ms_lib}", str(ms_lib / "libdnnl.so.3")]


def build(output=None, force=False):
    """Compile if needed; return the library path. Raises RuntimeError on failure."""
    output = Path(output or default_library_path())
    cmd = build_command(output.with_suffix(".tmp.so"))
    text = b"".join(f.read_bytes() for f in (*SOURCES, *HEADERS))
    digest = hashlib.sha256(text + " ".join(cmd).encode()).hexdigest()
    stamp = output.with_suffix(".sha256")
    if not force and output.exists() and stamp.exists() and stamp.read_text() == digest:
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("compiler failed:\n" + done.stderr[-3000:])
    os.replace(output.with_suffix(".tmp.so"), output)  # atomic: a running process keeps the old file
    stamp.write_text(digest)
    return output


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    try:
        path = build(force="--force" in args)
    except (RuntimeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"WARNING: fast CPU conv op not built ({first}); native convolutions will be used",
              file=sys.stderr)
        if "--verbose" in args:
            print(err, file=sys.stderr)
        return 0
    print(f"fast CPU conv op: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
