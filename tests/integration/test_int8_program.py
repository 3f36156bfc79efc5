"""The INT8 network's trunk as one op (src/ops/int8_program.py, src/models/quantized_program.py): for every
family it serves, the program's logits are the op-per-unit network's, bit for bit (same units, same arithmetic;
only the buffers and the launches differ), across batch sizes and clip shapes; the families it does not serve
(pre-activation blocks, type-A shortcuts) keep one op per unit; malformed programs are refused in one line."""
import numpy as np
import pytest

import mindspore as ms

from tests.unit.test_quant import FAMILIES, tiny_quantized


def _require_program():
    """Skip where the units cannot run through the oneDNN op: the op not built, or oneDNN below VNNI in this
    process (the CPU, or an earlier test's in-process AVX2 cap in the whole suite: tests/e2e/
    test_bf16_fresh_process.py runs this file again in a process of its own)."""
    from src.ops.int8_conv3d import Int8Conv3d
    from src.ops.int8_program import status

    if not status()[0]:
        pytest.skip(f"the INT8 program op is not built: {status()[1]}")
    unit = Int8Conv3d(np.ones((4, 4, 1, 1, 1), np.int8), np.full(4, 0.01, np.float32), np.zeros(4, np.float32),
                      in_dtype="u8", out_dtype="f32")
    refusal = unit.probe((1, 2, 3, 3, 4))[1]
    if refusal:
        pytest.skip(f"the INT8 op refuses this process's ISA ({refusal}): the units run emulated, no program")


def _networks(network, monkeypatch):
    from src.models.quantized import int8_network
    from src.ops.int8_program import PROGRAM_ENV

    monkeypatch.setenv(PROGRAM_ENV, "0")
    per_unit = int8_network(network, "auto")
    monkeypatch.delenv(PROGRAM_ENV)
    return per_unit, int8_network(network, "auto")


@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_program_equals_one_op_per_unit(tmp_path, monkeypatch, model):
    from src.ops.int8_program import program_counts

    _require_program()
    network, _, clips, _ = tiny_quantized(tmp_path, model, **FAMILIES[model])
    per_unit, program = _networks(network, monkeypatch)
    rng = np.random.default_rng(7)
    inputs = [np.concatenate(clips), rng.normal(0, 1, (1, 3, 6, 40, 36)).astype(np.float32), clips[0]]
    before = program_counts()["calls"]
    for x in inputs:
        want = per_unit(ms.Tensor(x)).asnumpy()
        got = program(ms.Tensor(x)).asnumpy()
        assert got.dtype == want.dtype and np.array_equal(got, want), model
    calls = program_counts()["calls"] - before
    if model == "preresnet":  # pre-activation blocks and type-A shortcuts: one op per unit
        assert per_unit.program is None and program.program is None and calls == 0
    else:
        assert per_unit.program is None and program.program is not None and calls == len(inputs)


def test_malformed_programs_are_refused(tmp_path):
    from src.ops.int8_conv3d import Int8Conv3d
    from src.ops.int8_program import Int8Program, unit_step

    _require_program()
    rng = np.random.default_rng(0)
    u8_in = Int8Conv3d(rng.integers(-127, 128, (8, 4, 1, 1, 1)).astype(np.int8), np.full(8, 0.01, np.float32),
                       np.zeros(8, np.float32), in_dtype="u8", in_scale=0.1, out_dtype="f32")
    with pytest.raises(RuntimeError, match="int8_program_create failed"):
        Int8Program([unit_step(u8_in, 3)], ms.float32, keep=[u8_in])  # reads a slot not yet defined
    program = Int8Program([unit_step(u8_in, 0)], ms.float32, keep=[u8_in])  # a u8 unit reading the float clips
    with pytest.raises(RuntimeError, match="input type differs"):
        program.infer([1, 4, 2, 8, 8])
