"""What a model file carries, declared once: :class:`ModelRecord` holds the architecture (the configuration's
:class:`~src.config_keys.ModelSpec` section), the clip it takes, its normalisation, the views it was validated
with, its class names, the dataset name that names result files, and its precision.

Checkpoints, ONNX metadata and MINDIR / AIR sidecars carry a record as JSON. A model file is input the user may
not have written, so every value of a record is validated when it is read, by the rules of the command line
(:func:`src.config_keys.key_problem`: type, choices, range, file-name parts) plus the record's own (class names
printable and as many as the classes, a normalisation of finite numbers): a bad value is one error naming the
file and the key. Nothing here touches a file.
"""
import json
import math
import re
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from src.config_keys import ModelSpec, key_problem
from src.errors import UserError

__all__ = ["ModelSpec", "ModelRecord", "RecordError", "printable"]

VERSION = 1
PRECISIONS = ("fp32", "int8")


# The configuration keys a record carries: the architecture (a command-line value that contradicts the model
# is an error), the input clip (the same), the views it was validated with and the dataset name (defaults only:
# another protocol or result name may be asked for).
ARCH_KEYS = tuple(f.name for f in fields(ModelSpec))
INPUT_KEYS = ("sample_size", "sample_duration", "sample_t_stride", "mean", "std", "resize")
VIEW_KEYS = ("inference_stride", "test_clips", "test_crops", "dataset")
RECORD_KEYS = (*ARCH_KEYS, *INPUT_KEYS, *VIEW_KEYS)
# what a record holds besides configuration keys
_OTHER = ("version", "class_names", "precision", "split", "int8")
INT8_KEYS = ("method", "videos", "clips", "activations")  # an INT8 file's calibration (src.quant.model)
INT8_DTYPES = ("u8", "s8", "f32")


def printable(text: Any, limit: int = 80) -> str:
    """``text`` safe for a terminal: control characters (ANSI escapes, newlines) shown escaped, cut at
    ``limit``."""
    text = str(text)
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit] + "…"


class RecordError(UserError):
    """A model file carries a value that is not valid."""


@dataclass(frozen=True)
class ModelRecord:
    """A model file's record. ``config`` maps configuration keys (RECORD_KEYS) to values: a file written by an
    older tool, or converted from upstream, carries some only. ``source`` names the file (for messages)."""
    config: MappingProxyType
    class_names: tuple | None = None
    precision: str = "fp32"
    split: MappingProxyType | None = None  # a plain folder's split (src.data.folder_split): fraction, seed, digest
    source: str = ""
    # precision int8: the calibration (method, videos, clips) and every activation's [dtype, scale] (src.quant)
    int8: MappingProxyType | None = None

    @classmethod
    def create(cls, values, class_names=None, precision="fp32", source="", split=None, int8=None):
        """A record of ``values`` (any mapping; its RECORD_KEYS are taken), validated."""
        record = cls(MappingProxyType({k: _plain(values[k]) for k in RECORD_KEYS if k in values}),
                     None if class_names is None else tuple(class_names), precision,
                     None if split is None else MappingProxyType(dict(split)), str(source),
                     None if int8 is None else MappingProxyType(dict(int8)))
        record.validate()
        return record

    @classmethod
    def from_json(cls, text, source):
        """The record of a model file's JSON text; every value checked (RecordError naming file and key)."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError):
            raise RecordError(f"{source}: its model record is not valid JSON: the file is damaged; write or "
                              f"download the model again") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise RecordError(f"{source}: model record of an unknown version: use the version of this suite "
                              f"that wrote it")
        unknown = [k for k in data if k not in RECORD_KEYS and k not in _OTHER]
        if unknown:
            raise RecordError(f"{source}: its model record holds an unknown key '{printable(unknown[0])}': the "
                              f"file was not written by this suite; write or convert the model again")
        if "class_names" in data and not isinstance(data["class_names"], list):
            raise _bad(source, "class_names", "is not a list")
        if "split" in data and not isinstance(data["split"], dict):
            raise _bad(source, "split", "is not an object")
        if "int8" in data and not isinstance(data["int8"], dict):
            raise _bad(source, "int8", "is not an object")
        return cls.create(data, data.get("class_names"), data.get("precision", "fp32"), source, data.get("split"),
                          data.get("int8"))

    def to_json(self) -> str:
        data = {"version": VERSION, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.config.items()}}
        if self.class_names is not None:
            data["class_names"] = list(self.class_names)
        if self.precision != "fp32":
            data["precision"] = self.precision
        if self.split is not None:
            data["split"] = dict(self.split)
        if self.int8 is not None:
            data["int8"] = dict(self.int8)
        return json.dumps(data, sort_keys=True)

    def validate(self):
        for key, value in self.config.items():
            problem = key_problem(key, value)
            if problem:
                raise _bad(self.source, key, f"{printable(repr(value))} {problem}")
        self._validate_names()
        self._validate_split()
        if self.precision not in PRECISIONS:
            raise _bad(self.source, "precision", f"{printable(repr(self.precision))} is not one of "
                                                 f"{', '.join(PRECISIONS)}")
        self._validate_int8()

    def _validate_int8(self):
        """precision int8 <=> an int8 section: its method a short text, its counts whole numbers, every
        activation a [dtype, scale] with a known dtype and a finite scale above 0 (a tampered scale is one error
        naming it)."""
        int8 = self.int8
        if (int8 is None) != (self.precision != "int8"):
            raise _bad(self.source, "int8", "section is missing for precision int8" if int8 is None else
                       f"section is present but the precision is {printable(self.precision)}")
        if int8 is None:
            return
        method, activations = int8.get("method"), int8.get("activations")
        if set(int8) != set(INT8_KEYS) or not isinstance(method, str) or not method.isprintable() or len(method) > 300:
            raise _bad(self.source, "int8", f"section {printable(sorted(int8))} is not {', '.join(INT8_KEYS)}")
        for count in ("videos", "clips"):
            if not _whole(int8[count]):
                raise _bad(self.source, f"int8 {count}", f"{printable(repr(int8[count]))} is not a whole number")
        if not isinstance(activations, dict) or not activations:
            raise _bad(self.source, "int8 activations", "are not a non-empty object")
        for name, entry in activations.items():
            problem = _activation_problem(name, entry)
            if problem:
                raise _bad(self.source, f"int8 activation {printable(name)}", problem)

    def _validate_names(self):
        names = self.class_names
        if names is None:
            return
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 200:
                raise _bad(self.source, "class_names", f"entry {i} ({printable(repr(name))}) is not a printable "
                                                       f"name of at most 200 characters")
        n_classes = self.config.get("n_classes")
        if n_classes is not None and len(names) != n_classes:
            raise _bad(self.source, "class_names", f"{len(names)} names for n_classes {n_classes}")

    def _validate_split(self):
        split = self.split
        if split is None:
            return
        fraction, seed, digest = split.get("val_fraction"), split.get("seed"), split.get("digest")
        if (set(split) != {"val_fraction", "seed", "digest"} or key_problem("val_fraction", fraction)
                or not isinstance(seed, int) or isinstance(seed, bool)
                or not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{8,64}", digest)):
            raise _bad(self.source, "split", f"{printable(dict(split))} is not a fraction, a seed and a hex digest")

    def spec(self) -> ModelSpec:
        """The architecture (the spec's defaults where an older file does not say)."""
        return ModelSpec(**{k: self.config[k] for k in ARCH_KEYS if k in self.config})


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _activation_problem(name, entry):
    """Why ``entry`` is not a valid [dtype, scale] of activation ``name``, or None."""
    if not re.fullmatch(r"[a-z0-9_.]{1,60}", str(name)):
        return "is not a tensor name"
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or entry[0] not in INT8_DTYPES:
        return f"{printable(repr(entry))} is not [dtype, scale] with a dtype of {', '.join(INT8_DTYPES)}"
    scale = entry[1]
    if (not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale)
            or not 0 < scale < 1e6):
        return f"scale {printable(repr(scale))} is not a finite number above 0"
    return None


def _plain(value):
    """Lists stay lists in the config (as the command line gives them); tuples become lists."""
    return list(value) if isinstance(value, tuple) else value


def _bad(source, key, problem):
    return RecordError(f"{source}: its model record's {key} {problem}: the file is damaged or was not written "
                       f"by this suite; write, export or convert the model again")
