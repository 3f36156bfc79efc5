"""The built fast-op library, called directly: its plan cache stays bounded, and the loader refuses a
library built for another oneDNN than the one this process runs."""
import ctypes
import logging
import shutil
import subprocess

import numpy as np
import pytest

from src.ops import fast_conv3d_status
from src.ops.build import mindspore_library
from src.ops.fast_conv3d import SYMBOLS
from src.ops.paths import LIBRARY_ENV, library_path

AVAILABLE, REASON = fast_conv3d_status()
needs_op = pytest.mark.skipif(not AVAILABLE, reason=f"fast conv op unavailable: {REASON}")


def conv_fwd(lib, x, w):
    """y = conv3d(x, w), stride 1, no padding, through the aot entry point MindSpore calls."""
    y = np.zeros((x.shape[0], w.shape[0], *(n - k + 1 for n, k in zip(x.shape[2:], w.shape[2:]))), np.float32)
    p = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1], np.int64)
    arrays = (x, w, p, y)
    params = (ctypes.c_void_p * 4)(*(a.ctypes.data for a in arrays))
    ndims = (ctypes.c_int * 4)(*(a.ndim for a in arrays))
    shapes_np = [np.array(a.shape, np.int64) for a in arrays]
    shapes = (ctypes.POINTER(ctypes.c_int64) * 4)(*(s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
                                                    for s in shapes_np))
    dtypes = (ctypes.c_char_p * 4)(b"float32", b"float32", b"int64", b"float32")
    assert lib.conv3d_fwd(4, params, ndims, shapes, dtypes, None, None) == 0
    return y


@needs_op
def test_plan_cache_is_bounded_lru():
    lib = ctypes.CDLL(str(library_path()))
    lib.conv3d_plan_cache_capacity.restype = lib.conv3d_plan_cache_entries.restype = ctypes.c_long
    capacity = lib.conv3d_plan_cache_capacity()
    assert 64 <= capacity <= 4096
    w = np.full((1, 1, 1, 1, 1), 2.0, np.float32)
    rng = np.random.default_rng(0)
    first = None
    for depth in range(1, capacity + 4):  # one new geometry (cache key) per depth
        x = rng.standard_normal((1, 1, depth, 1, 2)).astype(np.float32)
        np.testing.assert_array_equal(conv_fwd(lib, x, w), 2 * x)
        first = x if first is None else first
    assert lib.conv3d_plan_cache_entries() == capacity
    np.testing.assert_array_equal(conv_fwd(lib, first, w), 2 * first)  # evicted, made again
    assert lib.conv3d_plan_cache_entries() == capacity


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_loader_refuses_a_library_built_for_another_onednn(tmp_path, monkeypatch, caplog):
    ms_lib, _ = mindspore_library()
    stub = tmp_path / "stub.cc"
    stub.write_text('extern "C" {\n' + "".join(f"int {s}() {{ return 0; }}\n" for s in SYMBOLS)
                    + "int conv3d_dnnl_linked_version() { return 30900; }\n}\n")
    so = tmp_path / "libstub.so"
    subprocess.run(["g++", "-shared", "-fPIC", str(stub), "-o", str(so), "-Wl,--no-as-needed", str(ms_lib),
                    f"-Wl,-rpath,{ms_lib.parent}"], check=True)
    monkeypatch.setenv(LIBRARY_ENV, str(so))
    with caplog.at_level(logging.WARNING, logger="src.ops.fast_conv3d"):
        first, second = fast_conv3d_status(), fast_conv3d_status()
    assert first == second and first[0] is False
    assert "was built for oneDNN 3.9.0 but this process runs oneDNN 3.10.1" in first[1]
    assert [r.getMessage().startswith("fast CPU op refused") for r in caplog.records] == [True]
