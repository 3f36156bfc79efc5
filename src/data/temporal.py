"""Temporal transforms on lists of 1-based frame numbers (no pixels touched until indices are final)."""


def subsample(indices, stride):
    """Keep every ``stride``-th frame (sample_t_stride)."""
    return list(indices)[::max(1, int(stride))]


def loop_pad(indices, size):
    """Repeat the clip from its start until it holds ``size`` frames (short videos)."""
    indices = list(indices)
    if not indices:
        raise ValueError("cannot loop-pad an empty clip")
    out = list(indices)
    while len(out) < size:
        out.append(indices[len(out) % len(indices)])
    return out


def center_crop(indices, size):
    """``size`` frames around the middle, loop-padded when the video is shorter."""
    indices = list(indices)
    begin = max(0, len(indices) // 2 - size // 2)
    return loop_pad(indices[begin:begin + size], size)


def random_crop(indices, size, rng):
    """``size`` consecutive frames starting at a random position (numpy Generator ``rng``)."""
    indices = list(indices)
    last_begin = max(0, len(indices) - size)
    begin = int(rng.integers(0, last_begin + 1))
    return loop_pad(indices[begin:begin + size], size)


def sliding_windows(indices, size, stride):
    """Windows of ``size`` frames starting every ``stride`` frames, as upstream's SlidingWindow.

    The first window that reaches past the end is loop-padded and is the last one.
    """
    indices = list(indices)
    if stride < 1:
        raise ValueError(f"window stride {stride} must be at least 1")
    windows = []
    for begin in range(0, len(indices), stride):
        window = indices[begin:begin + size]
        if len(window) < size:
            windows.append(loop_pad(window, size))
            break
        windows.append(window)
    return windows


def uniform_clips(indices, size, n_clips):
    """``n_clips`` clips of ``size`` frames spread uniformly, as MMAction2's SampleFrames in test mode: with
    n frames, clip i starts at int(avg * (i + 0.5)), avg = (n - size + 1) / n_clips (0-based); a video
    shorter than ``size`` gives clips that all start at 0, loop-padded."""
    indices = list(indices)
    n = len(indices)
    if n < size:
        return [loop_pad(indices, size) for _ in range(n_clips)]
    avg = (n - size + 1) / n_clips
    return [indices[int(avg * (i + 0.5)):int(avg * (i + 0.5)) + size] for i in range(n_clips)]
