"""YAML configuration with command-line overrides.

A config file holds three YAML documents, as in the original suite: values, help strings and
choices. Every key is also a command-line option (``--key=value`` or ``--key value``); its type is
the type of the YAML value. Unknown keys and values outside ``choices`` are errors that name the
key and how to fix it. Nothing happens at import time.
"""
import difflib
import os
import sys
from pathlib import Path

import yaml

from src.errors import UserError, wrapped_user_error

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "ucf101_config.yaml"
RESOLVED_NAME = "config_resolved.yaml"
# keys whose values are file-system paths: '~' is expanded in them
_PATH_SUFFIXES = ("_path", "_file", "_dir", "_url")


class ConfigError(UserError):
    """A configuration problem the user can fix; the message says how."""


class Config(dict):
    """A dict whose keys are also attributes (``cfg.batch_size``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name, value):
        self[name] = value


def _read_documents(path):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: pass an existing YAML with --config_path")
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f)]
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}".replace("\n", " ")) from None
    docs = [d or {} for d in docs] + [{}] * (3 - len(docs))
    if not isinstance(docs[0], dict):
        raise ConfigError(f"config file {path}: the first YAML document must be a mapping of keys")
    return docs[0], docs[1], docs[2]


def _suggest(key, known):
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_value(key, text, default):
    """Convert command-line ``text`` to the type of the YAML ``default``."""
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


def _check_choices(cfg, choices):
    for key, allowed in choices.items():
        if key not in cfg:
            continue
        allowed_norm = [str(a) for a in allowed]
        if str(cfg[key]) not in allowed_norm:
            raise ConfigError(f"--{key}: '{cfg[key]}' is not one of {', '.join(allowed_norm)}")


def _expand_paths(cfg):
    for key, value in cfg.items():
        if isinstance(value, str) and value and key.endswith(_PATH_SUFFIXES):
            cfg[key] = os.path.expanduser(value)


def format_help(values, helps, choices, prog):
    lines = [f"usage: {prog} [--config_path=FILE] [--key=value ...]", "", "options (default from the config file):"]
    for key, value in values.items():
        extra = f" choices: {', '.join(str(c) for c in choices[key])}." if key in choices else ""
        lines.append(f"  --{key} (default: {value!r}) {helps.get(key, '')}{extra}")
    return "\n".join(lines)


def load_config(argv=None, default_config=DEFAULT_CONFIG, aliases=None, prog=None, extra=None):
    """Read the YAML named by ``--config_path`` (else ``default_config``) and apply ``argv``.

    ``aliases`` maps extra option names of one entry script onto config keys
    (e.g. export.py's ``--batch_size`` onto ``export_batch_size``).
    ``extra`` holds options of one entry script that are not config keys, with their defaults
    (e.g. predict.py's ``{"video": ""}``); they are parsed and checked like config keys.
    Returns a :class:`Config`; ``config_path`` holds the file read. Raises :class:`ConfigError`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or Path(sys.argv[0]).name
    pairs = list(_split_argv([a for a in argv if a not in ("-h", "--help")]))
    config_path = default_config
    for key, text in pairs:
        if key == "config_path":
            config_path = os.path.expanduser(text)
    values, helps, choices = _read_documents(config_path)
    values = {**(extra or {}), **values}
    if "-h" in argv or "--help" in argv:
        print(format_help(values, helps, choices, prog))
        raise SystemExit(0)
    cfg = Config(values)
    aliases = aliases or {}
    for key, text in pairs:
        if key == "config_path":
            continue
        key = aliases.get(key, key)
        if key not in cfg:
            raise ConfigError(f"unknown option --{key}{_suggest(key, list(cfg) + list(aliases))}; "
                              f"see {prog} --help for the keys of {config_path}")
        cfg[key] = parse_value(key, text, values[key])
    _check_choices(cfg, choices)
    _expand_paths(cfg)
    cfg["config_path"] = str(config_path)
    return cfg


def save_config(cfg, directory, name=RESOLVED_NAME):
    """Write the resolved config as YAML into ``directory`` (atomically); return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    tmp = directory / f".{name}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(dict(cfg), f, sort_keys=False)
    os.replace(tmp, target)
    return target


def run_main(main_fn, argv=None):
    """Run an entry script's body; turn user errors into one line on stderr and exit code 2."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return main_fn(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a UserError raised inside a MindSpore dataset worker
        message = wrapped_user_error(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
