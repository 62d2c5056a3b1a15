"""Normalization statistics stored with the dataset (min, max, mean, std per feature element).

Why stored: every policy trained on a store normalises with the same numbers, and the policy
checkpoint copies them, so serving never recomputes (or silently differs from) what training used.
Statistics are stamped with the episode count and steps they cover; a store that grew since is
recomputed. Low-dim and tactile features get per-element statistics; images get per-channel
statistics in [0, 1] from a strided subsample of frames (enough for normalisation, cheap to read).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from robot_learning.data import layout as L
from robot_learning.data.frames import FrameReader
from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)
STATS_ATTR = "stats"
MAX_IMAGE_FRAMES = 200


def compute_stats(store: EpisodeStore, max_image_frames: int = MAX_IMAGE_FRAMES) -> dict[str, Any]:
    """Statistics of every stored feature over the committed episodes."""
    features: dict[str, dict[str, list[float]]] = {}
    for key in store.array_keys():
        spec = store.features[key]
        stop = store.episode_range(-1, key)[1] if store.n_episodes else 0
        if stop == 0:
            continue
        if L.is_image(spec):
            rows = np.unique(np.linspace(0, stop - 1, min(stop, max_image_frames)).astype(np.int64))
            frames = FrameReader(store.array(key), store.root, key).read(rows).astype(np.float64)
            scale = 255.0 if spec.dtype == "uint8" else 1.0
            frames = frames.reshape(len(rows), -1, spec.shape[-1] if spec.kind == "rgb" else 1)
            values = frames.reshape(-1, frames.shape[-1]) / scale
        else:
            values = np.asarray(store.array(key)[:stop], dtype=np.float64).reshape(stop, -1)
        features[key] = {
            "min": values.min(axis=0).tolist(),
            "max": values.max(axis=0).tolist(),
            "mean": values.mean(axis=0).tolist(),
            "std": values.std(axis=0).tolist(),
        }
    return {"episodes": store.n_episodes, "steps": store.n_steps, "features": features}


def dataset_stats(store: EpisodeStore, write: bool = True) -> dict[str, Any]:
    """Stored statistics when they cover the store as it is; else compute (and store them).

    ``write`` stores fresh statistics when the store is open for writing.
    """
    cached = store.info.get(STATS_ATTR)
    if (
        isinstance(cached, dict)
        and cached.get("episodes") == store.n_episodes
        and cached.get("steps") == store.n_steps
    ):
        return cached
    stats = compute_stats(store)
    if write and store.writable:
        store.set_attrs(**{STATS_ATTR: stats})
        LOG.debug("stored normalization statistics for %d episodes", store.n_episodes)
    return stats


def feature_stats(stats: dict[str, Any], key: str, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """One feature's statistics as arrays shaped like the feature (images: per channel)."""
    entry = stats["features"][key]
    out = {}
    for name in ("min", "max", "mean", "std"):
        arr = np.asarray(entry[name], dtype=np.float32)
        out[name] = arr.reshape(shape) if arr.size == int(np.prod(shape)) else arr
    return out


__all__ = ["STATS_ATTR", "compute_stats", "dataset_stats", "feature_stats"]
