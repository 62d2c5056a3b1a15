"""Training windows over an episode store: ``n_obs_steps`` observations and ``horizon`` actions.

Why this shape: chunked policies (Diffusion Policy, ACT, pi0) condition on the last few
observations and predict a chunk of future actions. Following Diffusion Policy's sequence
sampler, a window of ``horizon`` steps starts ``pad_before`` steps before the first observation;
rows outside the episode are filled with the nearest edge row (edge padding) and flagged in the
pad masks, so a policy can learn that an episode has ended instead of seeing invented motion.

With the defaults (``pad_before = n_obs_steps - 1``, ``pad_after = horizon - n_obs_steps``) every
control step of every episode is the "current" observation of exactly one window.

Only the frames a window uses are decoded (:class:`~robot_learning.data.frames.FrameReader`);
low-dim arrays are loaded into memory once (``cache="lowdim"``, the default) since they are
small, and ``cache="all"`` also keeps decoded frames. Streams recorded at their own rate are
aligned to the control timeline by taking the latest sample at or before each step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_learning.data import layout as L
from robot_learning.data.frames import FrameReader
from robot_learning.data.store import EpisodeStore
from robot_learning.specs import SpecError

LOG = logging.getLogger(__name__)
CacheMode = Literal["none", "lowdim", "all"]
CACHE_MODES: tuple[str, ...] = ("none", "lowdim", "all")


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry; ``None`` pads take the defaults described in the module docstring."""

    n_obs_steps: int = 2
    horizon: int = 16
    pad_before: int | None = None
    pad_after: int | None = None

    def resolved(self) -> tuple[int, int]:
        if self.n_obs_steps < 1 or self.horizon < 1:
            raise ValueError(
                f"n_obs_steps and horizon must be >= 1, got {self.n_obs_steps}, {self.horizon}"
            )
        if self.n_obs_steps > self.horizon:
            raise ValueError(
                f"n_obs_steps ({self.n_obs_steps}) cannot exceed horizon ({self.horizon}): the "
                "observations are the first steps of the window"
            )
        before = self.n_obs_steps - 1 if self.pad_before is None else self.pad_before
        after = self.horizon - self.n_obs_steps if self.pad_after is None else self.pad_after
        if before < 0 or after < 0:
            raise ValueError(f"pads must be >= 0, got pad_before={before}, pad_after={after}")
        return before, after


def window_index(
    episode_ends: np.ndarray, config: WindowConfig, episodes: Sequence[int] | None = None
) -> np.ndarray:
    """``(N, 3)`` int64 rows ``(episode, episode_start_row, window_start)`` for every window.

    ``window_start`` is relative to the episode and may be negative (padding before).
    """
    before, after = config.resolved()
    starts = np.concatenate([[0], episode_ends[:-1]]).astype(np.int64)
    chosen = range(len(episode_ends)) if episodes is None else episodes
    rows = []
    for ep in chosen:
        length = int(episode_ends[ep] - starts[ep])
        first, last = -before, length - config.horizon + after
        if last < first:
            continue  # episode shorter than one window even with padding
        w = np.arange(first, last + 1, dtype=np.int64)
        rows.append(np.stack([np.full_like(w, ep), np.full_like(w, starts[ep]), w], axis=1))
    if not rows:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(rows)


class WindowSampler:
    """Windows as numpy dicts (no torch needed); :class:`WindowDataset` wraps it for torch.

    ``obs_keys``/``action_keys`` default to the store's observation/action features (language
    features come back as the episode's string).
    """

    def __init__(
        self,
        path: str | Path,
        n_obs_steps: int = 2,
        horizon: int = 16,
        obs_keys: Sequence[str] | None = None,
        action_keys: Sequence[str] | None = None,
        cache: CacheMode = "lowdim",
        episodes: Sequence[int] | None = None,
        pad_before: int | None = None,
        pad_after: int | None = None,
    ) -> None:
        if cache not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {cache!r}; valid: {', '.join(CACHE_MODES)}")
        self.path = Path(path)
        self.config = WindowConfig(n_obs_steps, horizon, pad_before, pad_after)
        self.cache = cache
        store = EpisodeStore.open(self.path, "r")
        try:
            self._init_from_store(store, obs_keys, action_keys, episodes)
        finally:
            store.close()
        self._readers: dict[str, FrameReader] | None = None
        self._frame_cache: dict[str, dict[int, np.ndarray]] = {k: {} for k in self.image_keys}

    def _init_from_store(
        self,
        store: EpisodeStore,
        obs_keys: Sequence[str] | None,
        action_keys: Sequence[str] | None,
        episodes: Sequence[int] | None,
    ) -> None:
        self.features = store.features
        obs = list(obs_keys) if obs_keys is not None else store.array_keys("observation")
        if obs_keys is None:
            obs += store.language_keys
        acts = list(action_keys) if action_keys is not None else store.array_keys("action")
        for key in [*obs, *acts]:
            if key not in store.features:
                raise SpecError(
                    f"{self.path}: no feature {key!r}; valid features: {store.features.names()}"
                )
        if not acts:
            raise SpecError(f"{self.path}: no action features to sample (roles: {store.roles})")
        self.obs_keys, self.action_keys = obs, acts
        self.language_keys = [k for k in obs if store.features[k].kind == "language"]
        self.image_keys = [
            k
            for k in [*obs, *acts]
            if L.is_image(store.features[k]) and k not in self.language_keys
        ]
        self.episode_ends = store.episode_ends
        if episodes is not None:
            for ep in episodes:
                if not 0 <= ep < store.n_episodes:
                    raise IndexError(
                        f"{self.path} has {store.n_episodes} episodes; no episode {ep}"
                    )
        self.index = window_index(self.episode_ends, self.config, episodes)
        self.languages = {
            k: [
                str(m.get("language", {}).get(k, m.get("instruction", "")))
                for m in store.episodes_meta()
            ]
            for k in self.language_keys
        }
        n_steps = store.n_steps
        self._lowdim: dict[str, np.ndarray] = {}
        for key in [*obs, *acts]:
            spec = store.features[key]
            if key in self.language_keys or L.is_image(spec):
                continue
            if key in store.async_streams:
                stop = store.episode_range(-1, key)[1] if store.n_episodes else 0
            else:
                stop = n_steps
            self._lowdim[key] = np.asarray(store.array(key)[:stop])
        self._async_rows = self._align_async(store, [*obs, *acts])
        self._ep_starts = np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    def _align_async(self, store: EpisodeStore, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Per control row, the row of each async stream sampled at or before it."""
        out: dict[str, np.ndarray] = {}
        async_keys = [k for k in keys if k in store.async_streams]
        if not async_keys:
            return out
        clock_key = next((k for k in store.array_keys() if k not in store.async_streams), None)
        if clock_key is None:
            raise SpecError(f"{self.path}: every feature is async; no control timeline to align to")
        clock = np.asarray(store.timestamps_array(clock_key)[: store.n_steps])
        for key in async_keys:
            times = np.asarray(store.timestamps_array(key)[: store.episode_range(-1, key)[1]])
            rows = np.empty(store.n_steps, dtype=np.int64)
            for ep in range(store.n_episodes):
                c0, c1 = store.episode_range(ep)
                a0, a1 = store.episode_range(ep, key)
                if a1 == a0:
                    raise SpecError(f"{self.path}: episode {ep} has no samples of {key!r}")
                pos = np.searchsorted(times[a0:a1], clock[c0:c1], side="right") - 1
                rows[c0:c1] = a0 + np.clip(pos, 0, a1 - a0 - 1)
            out[key] = rows
        return out

    def __len__(self) -> int:
        return len(self.index)

    def _rows(
        self, ep: int, ep_start: int, start: int, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Absolute rows of ``count`` steps from ``start`` (episode-relative), edge-padded."""
        length = int(self.episode_ends[ep] - ep_start)
        rel = start + np.arange(count)
        is_pad = (rel < 0) | (rel >= length)
        return ep_start + np.clip(rel, 0, length - 1), is_pad

    def sample(self, i: int) -> dict[str, Any]:
        """Window ``i``: obs keys ``[n_obs, ...]``, action keys ``[horizon, ...]``, pad masks."""
        ep, ep_start, start = (int(v) for v in self.index[i])
        n_obs, horizon = self.config.n_obs_steps, self.config.horizon
        obs_rows, obs_pad = self._rows(ep, ep_start, start, n_obs)
        act_rows, act_pad = self._rows(ep, ep_start, start, horizon)
        out: dict[str, Any] = {}
        for key in self.obs_keys:
            out[key] = self._values(key, ep, obs_rows)
        for key in self.action_keys:
            out[key] = self._values(key, ep, act_rows)
        out["obs_is_pad"] = obs_pad
        out["action_is_pad"] = act_pad
        out["episode"] = ep
        out["step"] = start + n_obs - 1
        return out

    def window_rows(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Vectorized rows of many windows: absolute ``obs_rows [N, n_obs]``/``action_rows
        [N, horizon]`` (edge-padded, on the control timeline) and their pad masks."""
        ep, ep_start, start = (self.index[windows, i] for i in range(3))
        length = self.episode_ends[ep] - ep_start
        out: dict[str, np.ndarray] = {}
        for name, count in (("obs", self.config.n_obs_steps), ("action", self.config.horizon)):
            rel = start[:, None] + np.arange(count)[None, :]
            out[f"{name}_is_pad"] = (rel < 0) | (rel >= length[:, None])
            out[f"{name}_rows"] = ep_start[:, None] + np.clip(rel, 0, length[:, None] - 1)
        out["episode"] = ep
        return out

    def stream_rows(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Control-timeline rows -> rows of ``key``'s own array (differs for async streams)."""
        return self._async_rows[key][rows] if key in self._async_rows else rows

    def lowdim_array(self, key: str) -> np.ndarray:
        """The in-memory array of a low-dim feature (all committed rows)."""
        return self._lowdim[key]

    def read_frames(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Decoded frames of image feature ``key`` at its own ``rows``."""
        return self._frames(key, rows)

    def _values(self, key: str, ep: int, rows: np.ndarray) -> Any:
        if key in self.language_keys:
            return self.languages[key][ep]
        if key in self._async_rows:
            rows = self._async_rows[key][rows]
        if key in self._lowdim:
            return self._lowdim[key][rows]
        return self._frames(key, rows)

    def _frames(self, key: str, rows: np.ndarray) -> np.ndarray:
        if self._readers is None:
            self._readers = self._open_readers()
        reader = self._readers[key]
        if self.cache != "all":
            return reader.read(rows)
        cache = self._frame_cache[key]
        missing = [r for r in dict.fromkeys(rows.tolist()) if r not in cache]
        if missing:
            for r, frame in zip(missing, reader.read(np.asarray(missing))):
                cache[r] = frame
        return np.stack([cache[r] for r in rows.tolist()])

    def _open_readers(self) -> dict[str, FrameReader]:
        """Opened lazily, so each DataLoader worker process opens its own handles."""
        store = EpisodeStore.open(self.path, "r")
        return {k: FrameReader(store.array(k), store.root, k) for k in self.image_keys}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_readers"] = None  # file handles stay in the process that opened them
        return state


class WindowDataset:
    """A ``torch.utils.data.Dataset`` of windows (tensors); works with multi-worker loaders.

    Arguments are those of :class:`WindowSampler`. Images stay uint8 ``(..., H, W, C)`` so the
    policy decides how to normalise and augment them; language features stay strings.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        import torch  # noqa: F401  (fail here, not in a worker, when torch is missing)

        self.sampler = WindowSampler(path, **kwargs)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {}
        for key, value in self.sampler.sample(i).items():
            out[key] = (
                torch.from_numpy(np.ascontiguousarray(value))
                if isinstance(value, np.ndarray)
                else value
            )
        return out


__all__ = ["CACHE_MODES", "WindowConfig", "WindowDataset", "WindowSampler", "window_index"]
