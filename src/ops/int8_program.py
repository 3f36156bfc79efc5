"""Int8Program: a chain of INT8 units (src.ops.int8_conv3d.Int8Conv3d) and integer max-pools run as one op
(src/ops/csrc/int8_program.cc): float32 NCDHW clips in, the last step's NDHWC tensor out.

At batch 1 the INT8 network's units are short (r3d50's 53 take 0.1-1.5 ms each), and one MindSpore op per unit
cost a launch, an output allocation and, per residual unit, a copy of the residual: the program runs the same
units back to back in buffers the library keeps, a residual unit writing into its residual's buffer. Same
arithmetic, same result, exactly.

Steps are ``unit_step(cell, in_slot, residual_slot)`` / ``pool_step(pool, in_slot)``; slot 0 is the clips, step i
defines slot i + 1. The units must run through the op (no fallback): the network builds a program only then.
"""
import ctypes
import functools
import weakref

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.ops.int8_conv3d import SYMBOLS as UNIT_SYMBOLS
from src.ops.fast_conv3d import symbols_status
from src.ops.paths import library_path

SYMBOLS = ("int8_program", "int8_program_create", "int8_program_release", "int8_program_shape")
PROGRAM_ENV = "RESNET3D_INT8_PROGRAM"  # '0': the INT8 network runs one op per unit (for comparisons)
STEP_WIDTH = 14
TYPES = {0: ms.float32, 1: ms.uint8, 2: ms.int8}


def status():
    """(available, reason) for the program op (a library built before it lacks its symbols)."""
    return symbols_status(UNIT_SYMBOLS + SYMBOLS)


@functools.cache
def _library(path):
    lib = ctypes.CDLL(path)  # the instance MindSpore's Custom op loads too (same path)
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.int8_program_create.restype = i64
    lib.int8_program_create.argtypes = (p, i64)
    lib.int8_program_release.restype = None
    lib.int8_program_release.argtypes = (i64,)
    lib.int8_program_shape.restype = ctypes.c_int
    lib.int8_program_shape.argtypes = (i64, p, p, p, ctypes.c_char_p, i64)
    for name in ("int8_program_calls", "int8_program_count"):
        getattr(lib, name).restype = ctypes.c_long
    return lib


def program_counts():
    """{'calls', 'programs'}: program op calls so far and programs held (for tests)."""
    lib = _library(str(library_path()))
    return {"calls": lib.int8_program_calls(), "programs": lib.int8_program_count()}


def unit_step(cell, in_slot, residual_slot=-1):
    """The step running Int8Conv3d ``cell`` on slot ``in_slot`` (adding slot ``residual_slot``)."""
    return (0, cell.handle, in_slot, residual_slot, 0, 1, 1, 1, *cell.stride, *cell.padding)


def pool_step(pool, in_slot):
    """The step running max-pool ``pool`` (its kernel_size, stride, padding) on slot ``in_slot``."""
    return (1, 0, in_slot, -1, 0, *pool.kernel_size, *pool.stride, *pool.padding)


class Int8Program(nn.Cell):
    """The op running ``steps`` (see the module's doc), its output of type ``out_dtype`` (the last step's);
    ``keep`` holds the cells whose handles the steps name."""

    def __init__(self, steps, out_dtype, keep=()):
        super().__init__()
        rows = np.array([step[:4] + (i + 1,) + step[5:] for i, step in enumerate(steps)], np.int64)
        if rows.ndim != 2 or rows.shape[1] != STEP_WIDTH:
            raise ValueError(f"steps: want {STEP_WIDTH} values each")
        self._lib = _library(str(library_path()))
        self.id = int(self._lib.int8_program_create(np.ascontiguousarray(rows).ctypes.data, len(rows)))
        if self.id <= 0:
            raise RuntimeError("int8_program_create failed (see the message above)")
        weakref.finalize(self, self._lib.int8_program_release, self.id)
        self._keep = list(keep)  # the units' handles live as long as their cells
        self.params = Tensor(np.array([self.id], np.int64))
        lib, program = self._lib, self.id

        def infer(x_shape):
            x, y = np.array(x_shape, np.int64), np.zeros(5, np.int64)
            code, why = ctypes.c_int(0), ctypes.create_string_buffer(512)
            if lib.int8_program_shape(program, x.ctypes.data, y.ctypes.data, ctypes.byref(code), why, len(why)):
                raise RuntimeError(f"INT8 program on clips {list(x_shape)}: {why.value.decode(errors='replace')}")
            return [int(v) for v in y], TYPES[code.value]

        self.infer = infer
        self.op = ops.Custom(f"{library_path()}:int8_program", lambda x, p: infer(x)[0],
                             lambda x, p: out_dtype, func_type="aot")
        self.op.add_prim_attr("int8_program", self.id)  # PyNative caches inferred shapes per op and input shapes

    def construct(self, x):
        return self.op(x, self.params)
