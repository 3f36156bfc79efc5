"""The op library's executor (src/ops/csrc/executor.h): every entry point's work runs on one thread of the
library, whichever thread calls it, and a child forked after that thread started gets its own (the parent's is
not copied by fork). Called here through ctypes in a fresh process (no MindSpore): the u8 NDHWC max-pool from
two threads at once, then from a forked child; each result against numpy's."""
import subprocess
import sys
import textwrap

import pytest

from src.ops.fast_conv3d import status
from src.ops.paths import library_path

AVAILABLE, REASON = status()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"fast op unavailable: {REASON} (run 'make ops')")

SCRIPT = textwrap.dedent("""
    import ctypes, os, signal, sys, threading
    import numpy as np

    lib = ctypes.CDLL(sys.argv[1])
    p = ctypes.c_void_p

    def pool(x):  # maxpool3d_infer_ndhwc: kernel 3, stride 2, padding 1 over [N, D, H, W, C] uint8
        n, d, h, w, c = x.shape
        y = np.zeros((n, (d - 1) // 2 + 1, (h - 1) // 2 + 1, (w - 1) // 2 + 1, c), np.uint8)
        params = np.array([3, 3, 3, 2, 2, 2, 1, 1, 1], np.int64)
        shapes = [np.array(a.shape, np.int64) for a in (x, params, y)]
        ptrs = (p * 3)(x.ctypes.data, params.ctypes.data, y.ctypes.data)
        dims = (ctypes.c_int * 3)(5, 1, 5)
        shp = (ctypes.POINTER(ctypes.c_int64) * 3)(*[s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) for s in shapes])
        types = (ctypes.c_char_p * 3)(b"uint8", b"int64", b"uint8")
        assert lib.maxpool3d_infer_ndhwc(3, ptrs, dims, shp, types, None, None) == 0
        return y

    def reference(x):
        padded = np.pad(x.astype(np.int16), [(0, 0), (1, 1), (1, 1), (1, 1), (0, 0)], constant_values=-1)
        n, d, h, w, c = x.shape
        out = np.full((n, (d - 1) // 2 + 1, (h - 1) // 2 + 1, (w - 1) // 2 + 1, c), -1, np.int16)
        for a in range(3):
            for b in range(3):
                for e in range(3):
                    window = padded[:, a::2, b::2, e::2][:, :out.shape[1], :out.shape[2], :out.shape[3]]
                    out = np.maximum(out, window)
        return out.astype(np.uint8)

    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 256, (2, 5, 9, 8, 16)).astype(np.uint8) for _ in range(4)]
    results = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, pool(xs[i]))) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(r, reference(x)) for r, x in zip(results, xs)), "threads"
    child = os.fork()
    if child == 0:
        signal.alarm(30)  # a child stuck on the parent's executor ends instead of outliving the test
        os._exit(0 if np.array_equal(pool(xs[1]), reference(xs[1])) else 3)
    _, code = os.waitpid(child, 0)
    assert os.WEXITSTATUS(code) == 0, f"child exit {code}"
    assert np.array_equal(pool(xs[2]), reference(xs[2])), "parent after fork"
    print("ok")
""")


def test_entry_points_from_threads_and_a_forked_child():
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(library_path())], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
