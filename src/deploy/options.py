"""Command-line options of entry scripts that are not config keys (paths of one run)."""


def pop_option(argv, name, default):
    """Take ``--name=value`` / ``--name value`` (an option that is not a config key) out of ``argv``."""
    argv, value, rest = list(argv), default, []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
        elif token == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
            i += 1
        else:
            rest.append(token)
        i += 1
    return value, rest

