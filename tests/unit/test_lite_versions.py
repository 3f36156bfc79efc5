"""src/deploy/lite.py without MindSpore Lite: the MINDIR's recorded versions, the release rule, the messages."""
import pytest

from src.deploy.lite import build_failure, check_lite_release, lite_release_for, mindir_versions, release
from src.errors import UserError

# what Lite 2.0.0's Python API raised for a MindSpore 2.10 MINDIR (and, without CANN, for the Ascend target)
LITE_2_0_ERROR = "build_from_file failed! Error is Common error code."


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number, value):
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _model(tmp_path, *fields):
    path = tmp_path / "m.mindir"
    path.write_bytes(b"".join(fields))
    return path


def test_versions_are_read_past_a_large_graph(tmp_path):
    path = _model(tmp_path, _field(1, b"1.1"), _field(2, b"MindSpore"), _field(5, b"2.10.0"),
                  _field(7, bytes(300_000)), _field(10, 1), _varint(11 << 3 | 1) + bytes(8), _field(13, 3))
    assert mindir_versions(path) == ("2.10.0", 3)


@pytest.mark.parametrize("content", [b"", b"not a model\n", _field(5, b"2.10.0")[:-2], bytes([0xFF] * 12)])
def test_files_that_do_not_say_give_none(tmp_path, content):
    path = tmp_path / "x.mindir"
    path.write_bytes(content)
    assert mindir_versions(path) == (None, None)


def test_a_model_without_mind_ir_version_gives_the_exporter_only(tmp_path):
    assert mindir_versions(_model(tmp_path, _field(5, b"1.8.1"), _field(7, b"graph"))) == ("1.8.1", None)


@pytest.mark.parametrize("version, expected", [
    ("2.10.0", (2, 10)), ("2.10.0rc1", (2, 10)), ("2.0.0", (2, 0)), ("2.9", (2, 9)), (None, None), ("dev", None)])
def test_release(version, expected):
    assert release(version) == expected


def test_releases_compare_as_numbers_not_text():
    assert release("2.9.0") < release("2.10.0") and "2.9.0" > "2.10.0"
    assert lite_release_for("2.10.0") == "2.10.x"


@pytest.mark.parametrize("lite", ["2.0.0", "2.9.1", "1.10.0"])
def test_an_older_lite_is_refused_before_building(lite):
    with pytest.raises(UserError) as err:
        check_lite_release(lite, "m.mindir", "2.10.0", 3)
    message = str(err.value)
    assert f"MindSpore Lite {lite} is older than MindSpore 2.10.0, which exported m.mindir (MINDIR version 3)" \
        in message
    assert "Lite must be the exporting MindSpore's release, install MindSpore Lite 2.10.x" in message


@pytest.mark.parametrize("lite, exporter", [("2.10.0", "2.10.0"), ("2.10.1", "2.10.0"), ("2.11.0", "2.10.0"),
                                            (None, "2.10.0"), ("2.0.0", None)])
def test_same_newer_or_unknown_releases_go_on_to_the_build(lite, exporter):
    check_lite_release(lite, "m.mindir", exporter, 3)


def test_build_failure_names_both_causes_and_how_to_tell_them_apart():
    message = build_failure("m.mindir", 1, LITE_2_0_ERROR + "\nmore", "2.0.0", "2.10.0")
    assert "\n" not in message
    assert message.startswith(f"MindSpore Lite 2.0.0 cannot build m.mindir on Ascend device 1 ({LITE_2_0_ERROR})")
    assert "Lite's log lines above say which" in message
    # cause 1: the versions, with Lite's log line and the release to install
    assert "can only support the maximum mind ir version" in message
    assert "model exported by MindSpore 2.10.0" in message and "install MindSpore Lite 2.10.x" in message
    # cause 2: the device, with Lite's log line and the checks
    assert "Init ascend failed" in message and "--device_id=1 with npu-smi info" in message
    assert "set_env.sh" in message


def test_build_failure_without_recorded_versions():
    message = build_failure("m.mindir", 0, LITE_2_0_ERROR, None, None)
    assert "MindSpore Lite (version unknown) cannot build" in message
    assert "a MindSpore whose version the model does not record" in message
    assert "install MindSpore Lite <the exporting MindSpore's release>" in message
