"""ModelRecord: what a model file carries, validated by the command line's rules whenever it is read."""
import json

import pytest

from src.config_keys import KEYS
from src.record import ARCH_KEYS, RECORD_KEYS, ModelRecord, ModelSpec, RecordError, printable


def _json(**changes):
    data = {"version": 1, "model": "resnet", "model_depth": 10, "n_classes": 2, "sample_size": 32,
            "sample_duration": 4, "inference_stride": 4, "test_clips": 0, "dataset": "ucf101",
            "mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2], "class_names": ["a", "b"]}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None})


def test_a_record_round_trips():
    record = ModelRecord.from_json(_json(), "m.onnx")
    again = ModelRecord.from_json(record.to_json(), "m.onnx")
    assert again == record
    assert record.spec() == ModelSpec(model_depth=10, n_classes=2)
    assert record.class_names == ("a", "b") and record.precision == "fp32"


def test_spec_defaults_are_the_configuration_defaults():
    assert ModelSpec().n_classes == KEYS["n_classes"].default
    assert set(ARCH_KEYS) <= set(RECORD_KEYS)


@pytest.mark.parametrize("changes, key, says", [
    ({"dataset": "../../../x"}, "dataset", "letters, digits"),
    ({"dataset": "a/b"}, "dataset", "letters, digits"),
    ({"inference_stride": 0}, "inference_stride", "at least 1"),
    ({"test_clips": -3}, "test_clips", "at least 0"),
    ({"sample_size": "112"}, "sample_size", "is not a int"),
    ({"model_depth": 11}, "model_depth", "is not one of"),
    ({"n_classes": True}, "n_classes", "is not a int"),
    ({"class_names": ["a", "\x1b[31merror: fake"]}, "class_names", "entry 1"),
    ({"class_names": ["a", "b\nerror: x"]}, "class_names", "entry 1"),
    ({"class_names": ["a"]}, "class_names", "1 names for n_classes 2"),
    ({"class_names": "ab"}, "class_names", "is not a list"),
    ({"std": [0.2, 0.0, 0.2]}, "std", "3 finite numbers above 0"),
    ({"mean": [0.1, 0.2]}, "mean", "3 finite numbers"),
    ({"resize": [128]}, "resize", "[height, width]"),
    ({"precision": "fp64"}, "precision", "is not one of"),
])
def test_a_bad_value_is_one_error_naming_file_and_key(changes, key, says):
    with pytest.raises(RecordError) as err:
        ModelRecord.from_json(_json(**changes), "m.onnx")
    message = str(err.value)
    assert message.startswith(f"m.onnx: its model record's {key} ") and says in message
    assert message.isprintable(), "text from the file reaches the terminal escaped"


@pytest.mark.parametrize("text, says", [("{", "not valid JSON"), ('{"version": 2}', "unknown version"),
                                        (_json(extra_key=1), "unknown key 'extra_key'"), ("[1]", "unknown version")])
def test_a_record_that_is_not_ours_is_refused(text, says):
    with pytest.raises(RecordError, match=says):
        ModelRecord.from_json(text, "m.ckpt")


def test_printable_escapes_control_characters():
    assert printable("a\x1b[31mb\nc") == "a\\x1b[31mb\\nc"
    assert printable("x" * 100, limit=10) == "x" * 10 + "…"
