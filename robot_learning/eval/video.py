"""Writing mp4 videos (H.264 through imageio's bundled ffmpeg) for rollouts and datasets.

Why one place: sim views, the demo, dataset episode videos and evaluation rollouts all write
the same kind of file; one writer keeps the codec settings (and their playback in browsers) the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def video_writer(path: Path, fps: float) -> Iterator[Callable[[np.ndarray], None]]:
    """Stream frames into an H.264 mp4 (imageio + its bundled ffmpeg); yields ``append(frame)``."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(
        str(path),
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        quality=8,
        macro_block_size=2,
        ffmpeg_log_level="error",
    )
    try:
        yield writer.append_data
    finally:
        writer.close()


__all__ = ["video_writer"]
