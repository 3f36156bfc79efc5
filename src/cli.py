"""What every entry script does around its body: logging set-up, and user errors as one line + exit code 2."""
import sys

from src.errors import UserError, wrapped_user_error
from src.logs import setup_console


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
