"""Training batches straight from memory: every window of a store, gathered with one index op.

Why not a DataLoader with workers: on a 2-core machine worker processes steal the cores the model
needs, and per-window Python assembly costs more than a small model's step. Low-dim arrays and
decoded frames (JPEG decoded once, ~28 KB per 96x96 frame) are held as contiguous arrays, and a
batch is a fancy-index per feature. Datasets larger than memory use
:class:`~robot_learning.data.sampler.WindowDataset` through a DataLoader instead (``loader:
workers`` in the recipe).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_learning.data import layout as L
from robot_learning.data.sampler import WindowSampler

LOG = logging.getLogger(__name__)
DECODE_CHUNK = 2048


class InMemoryWindows:
    """All windows of a store; ``batch(idx)`` returns the same dict as ``WindowDataset``."""

    def __init__(
        self,
        path: str | Path,
        n_obs_steps: int,
        horizon: int,
        obs_keys: Sequence[str],
        action_keys: Sequence[str],
        episodes: Sequence[int] | None = None,
    ) -> None:
        self.sampler = WindowSampler(
            path,
            n_obs_steps=n_obs_steps,
            horizon=horizon,
            obs_keys=obs_keys,
            action_keys=action_keys,
            cache="lowdim",
            episodes=episodes,
        )
        self.obs_keys = list(obs_keys)
        self.action_keys = list(action_keys)
        s = self.sampler
        self.arrays: dict[str, np.ndarray] = {}
        for key in [*self.obs_keys, *self.action_keys]:
            if key in s.language_keys:
                continue
            if L.is_image(s.features[key]):
                self.arrays[key] = self._decode_all(key)
            else:
                self.arrays[key] = np.ascontiguousarray(s.lowdim_array(key), dtype=np.float32)
        n_bytes = sum(a.nbytes for a in self.arrays.values())
        LOG.info("%d windows in memory (%.0f MB)", len(self), n_bytes / 1e6)

    def _decode_all(self, key: str) -> np.ndarray:
        """Decode every frame a window can use, once (rows outside the chosen episodes skipped)."""
        s = self.sampler
        rows = np.unique(s.stream_rows(key, np.arange(int(s.episode_ends[-1]))))
        first = s.read_frames(key, rows[:1])
        out = np.zeros((int(rows.max()) + 1, *first.shape[1:]), dtype=first.dtype)
        for i in range(0, len(rows), DECODE_CHUNK):
            chunk = rows[i : i + DECODE_CHUNK]
            out[chunk] = s.read_frames(key, chunk)
        return out

    def __len__(self) -> int:
        return len(self.sampler)

    def batch(self, windows: np.ndarray) -> dict[str, Any]:
        s = self.sampler
        rows = s.window_rows(np.asarray(windows))
        out: dict[str, Any] = {}
        for key, kind in [
            *((k, "obs") for k in self.obs_keys),
            *((k, "action") for k in self.action_keys),
        ]:
            if key in s.language_keys:
                out[key] = [s.languages[key][int(e)] for e in rows["episode"]]
                continue
            idx = s.stream_rows(key, rows[f"{kind}_rows"])
            out[key] = torch.from_numpy(self.arrays[key][idx])
        out["obs_is_pad"] = torch.from_numpy(rows["obs_is_pad"])
        out["action_is_pad"] = torch.from_numpy(rows["action_is_pad"])
        return out
