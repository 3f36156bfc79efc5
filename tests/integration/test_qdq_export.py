"""export.py on an INT8 model file writes ONNX in QDQ form (src/deploy/qdq.py): eval_onnx.py on it prints eval.py's
lines on the INT8 file; ONNX Runtime fuses its convolutions into QLinearConv and OpenVINO runs them in INT8; every
family's graph computes what the INT8 network computes."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import eval as eval_script
import eval_onnx
import export

# eval.py on the INT8 file vs eval_onnx.py on its QDQ export: the same lines and per-clip predictions; the clip scores
# (probabilities) within this (measured: 0.022). The QDQ file holds the bias in int32 accumulator units (ONNX
# Runtime's QLinearConv form) and the runtimes round their own way, which tips an output integer here and there;
# the tiny model's head (scaled x20 for confident predictions) turns one tipped integer of its few layer4 values
# into a few hundredths of probability
SCORE_TOLERANCE = 0.05
# the graph against the INT8 network holding the same rounded bias: the same integers but for a float rounding tie
GRAPH_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def qdq_workspace(onnx_workspace, tmp_path_factory):
    """The tiny checkpoint quantized by quantize.py on its training videos, and its QDQ export."""
    import mindspore as ms

    import quantize

    ws = onnx_workspace
    root = tmp_path_factory.mktemp("qdq")
    int8_file = root / "tiny_int8.ckpt"
    assert quantize.main(ws["args"] + [f"--ckpt_file={ws['ckpt']}", f"--output_path={int8_file}",
                                       "--calibration_videos=4"]) == 0
    assert export.main([f"--ckpt_file={int8_file}", "--file_format=ONNX", "--device_target=CPU",
                        f"--file_name={root / 'tiny_int8'}"]) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)  # export.py switches to the config's GRAPH mode
    return dict(ws, int8=int8_file, qdq=root / "tiny_int8.onnx")


def _clip_scores(path):
    return [(c["video"], c["window"], c["pred"], c["score"]) for c in json.loads(Path(path).read_text())]


def test_eval_onnx_on_the_qdq_export_prints_eval_py_lines_on_the_int8_file(qdq_workspace, tmp_path, capsys):
    ws = qdq_workspace
    assert eval_script.main(ws["args"] + [f"--inference_ckpt_path={ws['int8']}",
                                          f"--result_path={tmp_path / 'ms'}"]) == 0
    ms_lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={ws['qdq']}", f"--result_path={tmp_path / 'onnx'}"]) == 0
    onnx_lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert onnx_lines[0].startswith("clip: ") and onnx_lines[:3] == ms_lines
    a = _clip_scores(tmp_path / "ms" / "ucf101_eval_clips.json")
    b = _clip_scores(tmp_path / "onnx" / "ucf101_eval_onnx_clips.json")
    assert [x[:3] for x in a] == [x[:3] for x in b]  # same clips, same top-1 per clip
    np.testing.assert_allclose([x[3] for x in a], [x[3] for x in b], atol=SCORE_TOLERANCE)


def test_the_graph_computes_the_int8_network_with_its_rounded_bias(qdq_workspace):
    from src.deploy.qdq import qdq_parity
    from src.quant.model import load_quantized

    network = load_quantized(qdq_workspace["int8"])
    for seed in range(3):
        diff, moved = qdq_parity(network, qdq_workspace["qdq"], (1, 3, 4, 32, 32), seed)
        assert diff <= GRAPH_TOLERANCE and moved <= SCORE_TOLERANCE, (seed, diff, moved)


def test_the_qdq_file_records_int8_and_is_quantized(qdq_workspace):
    import onnx

    from src.weights.model_file import read_record

    record, source = read_record(qdq_workspace["qdq"]), read_record(qdq_workspace["int8"])
    assert record.precision == "int8" and record.int8 == source.int8
    model = onnx.load(str(qdq_workspace["qdq"]))
    ops = Counter(node.op_type for node in model.graph.node)
    initializers = {t.name: t for t in model.graph.initializer}
    producers = {node.output[0]: node for node in model.graph.node}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert ops["Conv"] == 12
    for conv in convs:  # input, weights and bias each a DequantizeLinear: of u8 / s8, of int8, of int32
        x, w, b = (producers[name] for name in conv.input)
        assert x.op_type == w.op_type == b.op_type == "DequantizeLinear"
        assert initializers[w.input[0]].data_type == onnx.TensorProto.INT8 and w.attribute[0].i == 0  # axis 0
        assert initializers[b.input[0]].data_type == onnx.TensorProto.INT32
        assert initializers[x.input[2]].data_type in (onnx.TensorProto.UINT8, onnx.TensorProto.INT8)


def test_onnx_runtime_fuses_qlinearconv(qdq_workspace, tmp_path):
    """ONNX Runtime's optimised graph: QLinearConv where a unit's output is quantized; the units that add the
    shortcut (their conv output is float32, added to the residual before the ReLU's quantization) stay Conv."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(qdq_workspace["qdq"]), options, providers=["CPUExecutionProvider"])
    ops = Counter(node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)
    # r3d10: stem + 4 blocks x 2 convs + 3 downsamples; the 4 convs that add the shortcut stay float
    assert ops["QLinearConv"] == 8 and ops["Conv"] == 4, ops


def test_openvino_runs_the_qdq_export_in_int8(qdq_workspace):
    import openvino as ov

    from src.inference.predictors import onnx_predictor

    compiled = ov.Core().compile_model(str(qdq_workspace["qdq"]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    int8 = [op for op in compiled.get_runtime_model().get_ordered_ops()
            if op.get_rt_info()["layerType"].astype(str) == "Convolution"
            and op.get_rt_info()["runtimePrecision"].astype(str) in ("u8", "i8")]
    assert len(int8) == 12  # all of them
    x = np.random.default_rng(3).standard_normal((1, 3, 4, 32, 32)).astype(np.float32)
    got = compiled.create_infer_request().infer({0: x})[0]
    np.testing.assert_allclose(got, onnx_predictor(qdq_workspace["qdq"])(x), atol=SCORE_TOLERANCE)
    assert (got.argmax(axis=1) == onnx_predictor(qdq_workspace["qdq"])(x).argmax(axis=1)).all()


def test_an_int8_file_exports_to_onnx_only(qdq_workspace, tmp_path, capsys):
    assert export.main([f"--ckpt_file={qdq_workspace['int8']}", "--file_format=MINDIR", "--device_target=CPU",
                        f"--file_name={tmp_path / 'x'}"]) == 2
    errors = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "exports to ONNX in QDQ form" in errors[0] and "FP32 checkpoint" in errors[0]
    assert [path.name for path in tmp_path.iterdir()] == ["ucf101_export.log"]  # the run's log; no model
