"""A model file someone else wrote cannot steer a run: the record an ONNX file, a checkpoint or a MINDIR sidecar
carries is validated when the tools read it (one `error:` line naming the file and the key, nothing written), and
a valid record is read without loading the tensors."""
import json

import mindspore as ms
import onnx
import pytest

import eval as eval_script
import eval_onnx
import predict
from src.weights.checkpoint import read_checkpoint
from src.weights.model_file import KEY, open_model, read_record


def _tampered_onnx(source, target, **changes):
    model = onnx.load(str(source))
    meta = {p.key: p.value for p in model.metadata_props}
    record = {**json.loads(meta[KEY]), **changes}
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = KEY, json.dumps(record)
    onnx.save(model, str(target))
    return target


def _files(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("changes, says", [
    ({"dataset": "../../../escaped"}, "dataset '../../../escaped' must be a name of letters"),
    ({"inference_stride": 0}, "inference_stride 0 must be at least 1"),
    ({"test_clips": -3}, "test_clips -3 must be at least 0"),
    ({"class_names": ["\x1b[2Jerror: fake"] + [f"c{i}" for i in range(7)]}, "class_names entry 0 ('\\x1b[2Jerror"),
])
def test_a_tampered_onnx_record_is_one_error_and_writes_nothing(onnx_workspace, tmp_path, capsys, changes, says):
    ws = onnx_workspace
    (tmp_path / "shared").mkdir()
    model = _tampered_onnx(ws["onnx"], tmp_path / "shared" / "m.onnx", **changes)
    result = tmp_path / "a" / "b" / "result"
    for tool in (eval_onnx, eval_script):
        code = tool.main(ws["args"] + [f"--onnx_path={model}", f"--result_path={result}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {model}: its model record's "), err
        assert says in err[0] and err[0].isprintable()
    assert _files(tmp_path) == ["m.onnx", "shared"], "nothing written anywhere, inside or outside --result_path"


def test_an_onnx_record_that_contradicts_its_graph_blames_the_file(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    model = _tampered_onnx(ws["onnx"], tmp_path / "m.onnx", sample_size=48)
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={model}", f"--result_path={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {model}: its model record contradicts its graph (sample_size 48 but its graph has 32): "
                   f"the file was altered; export it again")


def test_a_tampered_checkpoint_record_is_refused_by_eval_and_predict(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    entries = read_checkpoint(ws["ckpt"])
    record = {**json.loads(read_record(ws["onnx"]).to_json()), "n_classes": -1}
    ckpt = tmp_path / "bad.ckpt"
    ms.save_checkpoint([{"name": k, "data": v} for k, v in entries.items() if not isinstance(v, str)], str(ckpt),
                       append_dict={KEY: json.dumps(record)})
    code = eval_script.main(ws["args"] + [f"--inference_ckpt_path={ckpt}", f"--result_path={tmp_path / 'r'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {ckpt}: its model record's n_classes -1 must be at least 1: the file is "
                                 f"damaged or was not written by this suite; write, export or convert the model "
                                 f"again"]
    assert predict.main([f"--video={ws['jpg']}", f"--ckpt_file={ckpt}", "--device_target=CPU"]) == 2
    assert "its model record's n_classes -1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_tampered_sidecar_is_refused(onnx_workspace, tmp_path):
    ws = onnx_workspace
    mindir = tmp_path / "m.mindir"
    mindir.write_bytes(b"not read: the sidecar is checked first")
    record = json.loads(read_record(ws["onnx"]).to_json())
    record["sample_duration"] = "4; rm -rf /"
    (tmp_path / "m.mindir.json").write_text(json.dumps(record))
    with pytest.raises(Exception, match=r"m.mindir.json: its model record's sample_duration '4; rm -rf /' is not"):
        open_model(mindir, option="mindir_path")


def test_the_record_is_read_without_the_tensors(onnx_workspace, tmp_path):
    """open_model reads one entry: a checkpoint whose tensor bytes are flipped still gives its record (the CRC
    check of the tensors' one read reports the damage)."""
    ws = onnx_workspace
    ckpt = tmp_path / "flipped.ckpt"
    entries = read_checkpoint(ws["ckpt"])
    ms.save_checkpoint([{"name": k, "data": v} for k, v in entries.items()], str(ckpt),
                       append_dict={KEY: read_record(ws["onnx"]).to_json()}, crc_check=True)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    source = open_model(ckpt)
    assert source.kind == "checkpoint" and source.record.config["model_depth"] == 10
    with pytest.raises(Exception, match="corrupted or truncated"):
        read_checkpoint(ckpt)
