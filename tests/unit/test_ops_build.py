"""The fast-op build (src/ops/build.py): a broken compiler fails CI and `make ops STRICT=1` with the
compiler's first error and warns users once; what makes it rebuild; which oneDNN headers it accepts."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.ops import build

ROOT = Path(__file__).resolve().parents[2]
FAKE_ERROR = "src/ops/csrc/dnnl_runtime.h:1:1: error: broken on purpose"


@pytest.fixture
def broken_gxx(tmp_path):
    """A folder whose g++ answers --version but fails every compile with GCC-shaped output."""
    folder = tmp_path / "bin"
    folder.mkdir()
    gxx = folder / "g++"
    gxx.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "g++ (broken) 0.0"; exit 0; fi\n'
                   'echo "In file included from src/ops/csrc/conv3d_dnnl.cc:23:" >&2\n'
                   f'echo "{FAKE_ERROR}" >&2\necho "compilation terminated." >&2\nexit 1\n')
    gxx.chmod(0o755)
    return folder


def run(cmd, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "STRICT", "CXX")}
    env.update(env_changes)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_broken_compiler_fails_under_ci(broken_gxx):
    done = run([sys.executable, "-m", "src.ops.build"], CI="true", PATH=f"{broken_gxx}:{os.environ['PATH']}")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[0] == f"error: fast CPU op build failed: {FAKE_ERROR}"


def test_failing_cxx_fails_under_strict():
    done = run([sys.executable, "-m", "src.ops.build"], STRICT="1", CXX="/bin/false")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[0].startswith("error: fast CPU op build failed: compiler '/bin/false "
                                                  "--version' failed (exit 1)")


def test_broken_compiler_warns_users_once(broken_gxx):
    done = run([sys.executable, "-m", "src.ops.build"], PATH=f"{broken_gxx}:{os.environ['PATH']}")
    assert done.returncode == 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"WARNING: fast CPU op not built ({FAKE_ERROR})")
    assert "training about 1.8x slower" in lines[0] and "inference 1.7-2.2x slower" in lines[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_ops_strict_fails_on_broken_compiler(broken_gxx):
    # -o: take the venv as installed; PY: this interpreter
    cmd = ["make", "-o", ".venv/.installed", "ops", "STRICT=1", f"PY={sys.executable}"]
    done = run(cmd, PATH=f"{broken_gxx}:{os.environ['PATH']}")
    assert done.returncode != 0
    assert f"error: fast CPU op build failed: {FAKE_ERROR}" in done.stderr.splitlines()
    assert run(cmd[:-2] + [f"PY={sys.executable}"], PATH=f"{broken_gxx}:{os.environ['PATH']}").returncode == 0


def test_fingerprint_follows_mindspore_compiler_and_headers(tmp_path):
    info = build.inputs()
    base = build.fingerprint(info)
    assert build.fingerprint(dict(info)) == base
    for key, value in (("mindspore", "2.11.0"), ("compiler", "/usr/bin/g++: g++ 13"), ("linked", (3, 10, 2)),
                       ("headers", (3, 9, 2))):
        assert build.fingerprint({**info, key: value}) != base, key
    copy = tmp_path / "include"
    shutil.copytree(info["include"] / "oneapi", copy / "oneapi")
    assert build.fingerprint({**info, "include": copy}) == base  # contents, not the folder's name
    (copy / "oneapi" / "dnnl" / "dnnl_types.h").write_text("// changed\n")
    assert build.fingerprint({**info, "include": copy}) != base


def test_stale_reason(tmp_path):
    lib = tmp_path / "libconv3d_dnnl.so"
    assert "does not exist" in build.stale_reason(lib)
    lib.write_bytes(b"")
    build.stamp_path(lib).write_text("an older build")
    assert "other sources" in build.stale_reason(lib)
    build.stamp_path(lib).write_text(build.fingerprint(build.inputs()))
    assert build.stale_reason(lib) is None


def test_headers_may_be_older_than_the_library_not_newer():
    build.check_versions((3, 9, 1), (3, 10, 1))
    build.check_versions((3, 10, 1), (3, 10, 1))
    for headers in ((3, 11, 2), (3, 10, 2), (2, 9, 0)):
        with pytest.raises(build.BuildError, match="do not fit the linked library 3.10.1"):
            build.check_versions(headers, (3, 10, 1))


def test_linked_onednn_is_mindspores():
    info = build.inputs()
    assert info["linked"][:2] == (3, 10) and info["headers"][:2] == (3, 9)
    assert any(part.endswith("mindspore/lib/libdnnl.so.3") for part in info["command"])
