"""Render one stored episode to an mp4: its image streams side by side, one frame per step.

Why: the quickest check of a demonstration is to watch it. Depth is colourized (turbo-like map
over the episode's own 2nd..98th percentile range, so near and far stay distinguishable), small
frames are upscaled by an integer factor, and a thin bar along the bottom shows progress through
the episode (green for a success, red for a failure, grey when unlabelled). Frames are read in
small blocks, so long high-resolution episodes never sit in memory at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.data import layout as L
from robot_learning.data.errors import StoreError
from robot_learning.data.store import EpisodeStore
from robot_learning.eval.video import video_writer

LOG = logging.getLogger(__name__)
READ_BLOCK = 64
MIN_VIDEO_HEIGHT = 240  # upscale tiny training frames (e.g. 96x96) until they are watchable
BAR_COLOURS = {True: (40, 200, 60), False: (220, 50, 40), None: (160, 160, 160)}


@dataclass
class VideoResult:
    path: str
    episode: int
    frames: int
    keys: list[str]
    width: int
    height: int
    fps: float

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "episode": self.episode,
            "frames": self.frames,
            "keys": self.keys,
            "width_px": self.width,
            "height_px": self.height,
            "fps": self.fps,
        }


def image_keys(store: EpisodeStore, keys: Sequence[str] | None = None) -> list[str]:
    """The image features to show: ``keys`` (checked) or every rgb/depth feature of the store."""
    available = [k for k in store.array_keys() if L.is_image(store.features[k])]
    if keys is None:
        if not available:
            raise StoreError(f"{store.root} has no image features (rgb or depth) to render")
        return available
    bad = [k for k in keys if k not in available]
    if bad:
        raise StoreError(f"not image features of {store.root}: {bad}; image features: {available}")
    return list(keys)


def colorize_depth(depth: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """uint16 depth -> uint8 RGB through a turbo-like colormap; zero (no reading) stays black."""
    x = np.clip((depth.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    # polynomial fit of Google's Turbo colormap (Mikhailov 2019), accurate to a few percent
    r = 0.1357 + x * (4.5974 - x * (42.3277 - x * (130.5887 - x * (150.5666 - x * 58.1375))))
    g = 0.0914 + x * (2.1856 + x * (4.8052 - x * (14.0195 - x * (4.2109 + x * 2.7747))))
    b = 0.1067 + x * (12.5925 - x * (60.1097 - x * (109.0745 - x * (88.5066 - x * 26.8183))))
    rgb = np.stack([r, g, b], axis=-1)
    out = (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
    out[depth == 0] = 0
    return out


def tile(frames: Sequence[np.ndarray], scale: int = 1) -> np.ndarray:
    """RGB frames side by side, top-aligned on a black canvas, upscaled by ``scale``."""
    height = max(f.shape[0] for f in frames)
    width = sum(f.shape[1] for f in frames)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    x = 0
    for f in frames:
        canvas[: f.shape[0], x : x + f.shape[1]] = f
        x += f.shape[1]
    if scale > 1:
        canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    return canvas


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 (yuv420p) needs even sides: pad one black row/column where odd."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def _depth_range(store: EpisodeStore, key: str, start: int, stop: int) -> tuple[float, float]:
    arr = store.array(key)
    sample = np.asarray(arr[start : stop : max(1, (stop - start) // 16)])
    valid = sample[sample > 0]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(valid, [2, 98])
    return float(lo), float(max(hi, lo + 1))


def _frames(store: EpisodeStore, episode: int, keys: Sequence[str]) -> Iterator[list[np.ndarray]]:
    """Per control step, one RGB image per key (async streams: the latest sample so far)."""
    start, stop = store.episode_range(episode)
    control = next(k for k in store.array_keys() if k not in store.async_streams)
    control_t = np.asarray(store.timestamps_array(control)[start:stop])
    picks: dict[str, np.ndarray] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for key in keys:
        k_start, k_stop = store.episode_range(episode, key)
        if key in store.async_streams:
            t = np.asarray(store.timestamps_array(key)[k_start:k_stop])
            if len(t) == 0:
                raise StoreError(f"episode {episode} has no samples of {key!r}")
            idx = np.clip(np.searchsorted(t, control_t, side="right") - 1, 0, len(t) - 1)
            picks[key] = k_start + idx
        else:
            picks[key] = np.arange(k_start, k_stop)
        if store.features[key].kind == "depth":
            ranges[key] = _depth_range(store, key, k_start, k_stop)
    for lo in range(0, stop - start, READ_BLOCK):
        hi = min(stop - start, lo + READ_BLOCK)
        blocks = {}
        for key in keys:
            rows = picks[key][lo:hi]
            first, last = int(rows.min()), int(rows.max()) + 1
            data = store._read(key, episode, store.array(key), first, last)
            blocks[key] = data[rows - first]
        for j in range(hi - lo):
            out = []
            for key in keys:
                frame = blocks[key][j]
                if key in ranges:
                    frame = colorize_depth(frame, *ranges[key])
                out.append(frame)
            yield out


def write_episode_video(
    store: EpisodeStore,
    episode: int,
    out: str | Path,
    *,
    keys: Sequence[str] | None = None,
    fps: float | None = None,
    scale: int | None = None,
) -> VideoResult:
    """Write episode ``episode`` of ``store`` to ``out`` (.mp4, H.264); one frame per step."""
    path = Path(out)
    if path.suffix.lower() != ".mp4":
        raise StoreError(f"video output must be an .mp4 file, got {str(path)!r}")
    shown = image_keys(store, keys)
    n = store.episode_length(episode)
    success = store.episode_meta(episode).get("success")
    colour = np.array(BAR_COLOURS.get(success, BAR_COLOURS[None]), dtype=np.uint8)
    height = max(store.features[k].shape[0] for k in shown)
    factor = scale or max(1, -(-MIN_VIDEO_HEIGHT // height))
    rate = float(fps or store.fps or 10.0)
    count, shape = 0, (0, 0)
    with video_writer(path, rate) as append:
        for step, frames in enumerate(_frames(store, episode, shown)):
            canvas = tile([_as_rgb(f) for f in frames], factor)
            bar = max(2, canvas.shape[0] // 60)
            canvas[-bar:, : round(canvas.shape[1] * (step + 1) / n)] = colour
            canvas = _even(canvas)
            append(canvas)
            count, shape = count + 1, canvas.shape[:2]
    LOG.info("wrote %s (%d frames of %s)", path, count, "+".join(shown))
    return VideoResult(str(path), episode, count, list(shown), shape[1], shape[0], rate)


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return frame.astype(np.uint8, copy=False)


__all__ = ["VideoResult", "colorize_depth", "image_keys", "tile", "write_episode_video"]
