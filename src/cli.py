"""What every entry script does around its body: logging set-up, and user errors as one line + exit code 2.

Two parsers, one style: config-driven scripts read ``--key=value`` / ``--key value`` through src.config; the
others use :class:`ArgumentParser`, which takes the same spellings and reports a bad option the same way (one
``error:`` line naming the option, exit code 2).
"""
import argparse
import sys

from src.errors import UserError, wrapped_user_error
from src.logs import setup_console


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the suite's error style: a bad or missing option is a UserError (one ``error:`` line
    through run_main), and no abbreviated option names (``--pth`` is not ``--pth_path``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UserError(f"{message}; see {self.prog} --help")


def run_main(main_fn, argv=None):
    """Run an entry script's body; turn user errors into one ``error: ...`` line on stderr and exit code 2."""
    setup_console()
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
