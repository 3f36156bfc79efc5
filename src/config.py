"""YAML configuration with command-line overrides, typed and checked once.

Every key is declared in :mod:`src.config_keys` (type, default, help, choices, range). A YAML file
gives values (its first document; the original's help and choices documents are accepted and
ignored); every key is also a command-line option (``--key=value`` or ``--key value``). Values are cast
to the declared type here and nowhere else; unknown keys, values outside ``choices`` and out-of-range
values are errors that name the key and how to fix it. Nothing happens at import time.
"""
import difflib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from src.atomic import atomic_output
from src.config_keys import (KEYS, SECTION_OF, SECTION_TYPES, SECTIONS, Checkpoints, Data, Evaluation, Export, Key,
                             Length, ModelSpec, Optimisation, Paths, Placement, Runtime, Schedule)
from src.errors import UserError

log = logging.getLogger("resnet3d")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "ucf101_config.yaml"
# keys whose values are file-system paths: '~' is expanded in them
_PATH_SUFFIXES = ("_path", "_file", "_dir", "_url")
# written into a saved config by save_config; accepted when such a file is read back
_META_KEYS = ("config_path",)
# Keys that an environment variable may set (the launch scripts set DEVICE_ID; the others are for benchmarks
# and tests). The one precedence rule of every key: command line > environment > YAML file > default; a
# lower-ranked source that disagrees with the value used is named in one log line.
ENVIRONMENT = {"device_id": "DEVICE_ID", "conv_impl": "RESNET3D_CONV_IMPL", "cpu_isa_cap": "RESNET3D_CPU_ISA_CAP"}


class ConfigError(UserError):
    """A configuration problem the user can fix; the message says how."""


@dataclass(frozen=True)
class RunConfig:
    """One run's configuration, built once by :func:`load_config` and never changed: one frozen section per
    concern (src.config_keys.SECTION_TYPES), the entry script's own options, the keys the command line gave
    (``explicit``: resume and model-record checks need to know) and the file read.

    Functions take the section they use (``cfg.schedule``, ``cfg.arch``) or plain values. ``cfg.batch_size`` /
    ``cfg["batch_size"]`` read one key wherever it lives, for the entry scripts' few direct reads.
    """
    placement: Placement
    runtime: Runtime
    paths: Paths
    arch: ModelSpec
    data: Data
    evaluation: Evaluation
    optimisation: Optimisation
    schedule: Schedule
    length: Length
    checkpoints: Checkpoints
    export: Export
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    explicit: frozenset = frozenset()
    config_path: str = ""

    @classmethod
    def from_values(cls, values, explicit=(), config_path=""):
        """The config of flat ``values`` (key -> value; keys no section declares are the entry script's options)."""
        sections = {name: section_type(**{k: values[k] for k in SECTIONS[name][1] if k in values})
                    for name, (_, section_type) in SECTION_TYPES.items()}
        options = {k: v for k, v in values.items() if k not in SECTION_OF and k not in _META_KEYS}
        return cls(**sections, options=MappingProxyType(options), explicit=frozenset(explicit),
                   config_path=str(config_path))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        section = SECTION_OF.get(name)
        if section is not None:
            return getattr(object.__getattribute__(self, section), name)
        options = object.__getattribute__(self, "options")
        if name in options:
            return options[name]
        raise AttributeError(f"config has no key '{name}'")

    def __getitem__(self, name):
        try:
            return self.__getattr__(name)
        except AttributeError:
            raise KeyError(name) from None

    def __contains__(self, name):
        return name in SECTION_OF or name in self.options

    def as_dict(self) -> dict:
        """Every key and option with its value (what save_config writes)."""
        values = {k: getattr(getattr(self, SECTION_OF[k]), k) for k in KEYS}
        return {**values, **self.options}

    def replace(self, **values) -> "RunConfig":
        """A copy with ``values`` set (what a run derives, e.g. n_classes from the annotation), checked like the
        command line's; the command-line record is kept."""
        for name, value in values.items():
            if name not in self:
                raise KeyError(name)
            problem = KEYS[name].problem(value) if name in KEYS else None
            if problem:
                raise ConfigError(f"{name}={value!r} {problem}")
        return RunConfig.from_values({**self.as_dict(), **values}, self.explicit, self.config_path)


def read_values(path):
    """The values document of a config file, as a dict (unchecked)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: pass an existing YAML with --config_path")
    try:
        text = path.read_text(encoding="utf-8")
        docs = list(yaml.safe_load_all(text))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a text file: pass a YAML config with --config_path") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}".replace("\n", " ")) from None
    values = docs[0] if docs else None
    if values is None:
        raise ConfigError(f"config file {path} sets no keys: start from ucf101_config.yaml")
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: the first YAML document must be a mapping of keys to values")
    return values


def _suggest(key, known):
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_value(key, text, default):
    """Convert command-line ``text`` to the type of ``default``."""
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"--{key}: '{text}' is not a boolean; use True or False")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"--{key}: '{text}' is not an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"--{key}: '{text}' is not a number") from None
    if isinstance(default, (list, tuple)):
        try:
            value = yaml.safe_load(text) if text.strip() else []
        except yaml.YAMLError:
            value = None
        if isinstance(value, (int, float)):
            value = [value]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"--{key}: '{text}' is not a list; write e.g. --{key}=[30,60] or --{key}=30,60")
        return value
    return text


def _cast_yaml(path, key, value, default):
    """A YAML value as the declared type (YAML's 1024 for a float key, 'on' quoted or not, ...)."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
    elif isinstance(value, str):
        return value
    elif isinstance(value, (int, float, bool)) and not isinstance(default, (int, float, bool, list)):
        return str(value)
    raise ConfigError(f"config file {path}: {key}: {value!r} is not a {type(default).__name__}")


def _split_argv(argv):
    """Yield (key, value-text) pairs from ``--key=value`` / ``--key value`` tokens."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument '{token}': options are written --key=value")
        body = token[2:]
        if "=" in body:
            key, text = body.split("=", 1)
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            key, text = body, argv[i + 1]
            i += 2
        else:
            raise ConfigError(f"--{body} needs a value: write --{body}=VALUE")
        yield key, text


def _check(cfg, keys):
    for name, key in keys.items():
        value = cfg[name]
        problem = key.problem(value)
        if problem:
            where = f"--{name}: '{value}'" if problem.startswith("is not one of") else f"--{name}={value}"
            raise ConfigError(f"{where} {problem}")
        if key.convert:
            cfg[name] = key.convert(value)


def _expand_paths(cfg):
    for key, value in cfg.items():
        if isinstance(value, str) and value and key.endswith(_PATH_SUFFIXES):
            cfg[key] = os.path.expanduser(value)


def format_help(keys, values, prog, aliases=None):
    lines = [f"usage: {prog} [--config_path=FILE] [--key=value ...]", "", "options by section (default from the "
             "config file):"]
    also = {}
    for alias, target in (aliases or {}).items():
        if not isinstance(target, tuple):
            also.setdefault(target, []).append(alias)
    groups = {}
    for name in keys:  # the tool's own options first, then the config's sections in their order
        groups.setdefault(SECTION_OF.get(name, "options of this tool"), []).append(name)
    for group, names in groups.items():
        lines.append(f"{group}:" if group not in SECTIONS else
                     f"{group}{' (changes results)' if SECTIONS[group][0] else ''}:")
        for name in names:
            key = keys[name]
            extra = f" choices: {', '.join(str(c) for c in key.choices)}." if key.choices else ""
            flags = " | ".join(f"--{n}" for n in (*also.get(name, ()), name))
            lines.append(f"  {flags} (default: {values[name]!r}) {key.help}{extra}")
    return "\n".join(lines)


def _as_key(value):
    return value if isinstance(value, Key) else Key(value, "")


# what an evaluating / deploying entry point reads of the config (its --help lists only these sections)
EVAL_SECTIONS = ("placement", "runtime", "paths", "arch", "data", "evaluation")
DEPLOY_SECTIONS = ("placement", "runtime", "arch", "data", "export")


def load_config(argv=None, default_config=DEFAULT_CONFIG, aliases=None, prog=None, extra=None, sections=None):
    """Read the YAML named by ``--config_path`` (else ``default_config``) and apply ``argv``.

    ``aliases`` maps other option names of one entry script onto keys (e.g. export.py's ``--batch_size``
    onto ``export_batch_size``); an alias given as ``(key, "deprecated")`` warns when used.
    ``extra`` declares options of one entry script that are not config keys (name -> default or
    :class:`~src.config_keys.Key`); they are parsed and checked like config keys.
    ``sections``: the config sections (src.config_keys.SECTIONS) this entry point uses: its ``--help`` lists
    only their keys (and ``extra``); None = all.
    Returns the :class:`RunConfig`. Raises :class:`ConfigError`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or Path(sys.argv[0]).name
    pairs = list(_split_argv([a for a in argv if a not in ("-h", "--help")]))
    config_path = default_config
    for key, text in pairs:
        if key == "config_path":
            config_path = os.path.expanduser(text)
    keys = {**{name: _as_key(v) for name, v in (extra or {}).items()}, **KEYS}
    values = {name: key.default for name, key in keys.items()}
    from_file = read_values(config_path)
    unknown = [k for k in from_file if k not in KEYS and k not in _META_KEYS]
    if unknown:
        raise ConfigError(f"config file {config_path}: unknown key '{unknown[0]}'{_suggest(unknown[0], list(KEYS))}")
    for name, value in from_file.items():
        if name in KEYS:
            values[name] = _cast_yaml(config_path, name, value, KEYS[name].default)
    absent = [k for k in KEYS if k not in from_file]
    if absent:
        log.debug("%s does not set %s: defaults used", config_path, ", ".join(absent))
    if "-h" in argv or "--help" in argv:
        shown = {name: key for name, key in keys.items()
                 if sections is None or name not in SECTION_OF or SECTION_OF[name] in sections}
        print(format_help(shown, values, prog, aliases))
        raise SystemExit(0)
    cfg = dict(values)
    aliases = aliases or {}
    explicit = set()
    for key, text in pairs:
        if key == "config_path":
            continue
        target = aliases.get(key, key)
        if isinstance(target, tuple):
            target = target[0]
            log.warning("--%s is deprecated: use --%s", key, target)
        if target not in cfg:
            raise ConfigError(f"unknown option --{key}{_suggest(key, list(cfg) + list(aliases))}; "
                              f"see {prog} --help for the keys of {config_path}")
        cfg[target] = parse_value(key, text, keys[target].default)
        explicit.add(target)
    _apply_environment(cfg, explicit)
    _check(cfg, keys)
    _expand_paths(cfg)
    return RunConfig.from_values(cfg, explicit, config_path)


def environment_value(key):
    """The value the environment gives ``key`` (one of ENVIRONMENT), parsed and checked like the command line's,
    or None when it gives none: the one reading of those variables (load_config, and src.runtime for callers
    without a config)."""
    var = ENVIRONMENT[key]
    text = os.environ.get(var, "")
    if not text:
        return None
    try:
        value = parse_value(key, text, KEYS[key].default)
    except ConfigError:
        value = None
    if value is None or KEYS[key].problem(value):
        raise ConfigError(f"{var}='{text}' in the environment is not a valid {key}: unset it or fix it")
    return value


def _apply_environment(cfg, explicit):
    """The environment's values for the keys of ENVIRONMENT, below the command line and above the YAML."""
    for key, var in ENVIRONMENT.items():
        value = environment_value(key)
        if value is None:
            continue
        text = os.environ[var]
        if key in explicit:
            if value != cfg[key]:
                log.info("%s=%s from the command line (%s=%s in the environment ignored)", key, cfg[key], var, text)
        elif value != cfg[key]:
            log.info("%s=%s from %s in the environment (the config file's %s ignored)", key, value, var, cfg[key])
            cfg[key] = value


def save_config(cfg, path):
    """Write the resolved config as YAML to ``path`` (atomically); return the path."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump({**cfg.as_dict(), "config_path": cfg.config_path}, f, sort_keys=False)
    return Path(path)
