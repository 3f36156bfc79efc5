"""Custom operators. The fast CPU 3-D convolution lives in fast_conv3d.py (built by `make setup`)."""


def fast_conv3d_status():
    """(available, reason): whether the fast CPU convolution op can be used in this process."""
    try:
        from src.ops.fast_conv3d import status
    except ImportError as err:
        return False, f"fast_conv3d module not importable: {err}"
    return status()


def FastConv3d(*args, **kwargs):  # noqa: N802 - constructor of a Cell
    from src.ops.fast_conv3d import FastConv3d as cls

    return cls(*args, **kwargs)
