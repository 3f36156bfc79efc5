"""The one exception type for problems the user can fix (bad file, bad option, bad data)."""
import re

_WRAPPED = re.compile(r"(?:src\.errors\.)?UserError: (.+)")


class UserError(Exception):
    """Printed as a single 'error: ...' line by the entry scripts, which then exit non-zero."""


def wrapped_user_error(err):
    """The UserError message inside an exception that MindSpore raised for it, or None.

    A UserError raised in a dataset worker reaches the main process as a RuntimeError whose text
    holds the worker's traceback; its last 'UserError: ...' line is the message for the user.
    """
    found = _WRAPPED.findall(str(err))
    return found[-1].strip() if found else None
