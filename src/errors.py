"""The one exception type for problems the user can fix (bad file, bad option, bad data)."""


class UserError(Exception):
    """Printed as a single 'error: ...' line by the entry scripts, which then exit non-zero."""
