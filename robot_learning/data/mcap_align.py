"""Time alignment for ``dataset import-mcap``: many topic rates -> one control timeline.

Why zero-order hold: at control time ``t`` a policy can only have seen the latest sample of
each stream stamped at or before ``t``; interpolating, or taking the nearest sample (which may
lie in the future), would train on information the robot never had. Every feature is therefore
resampled by taking, for each tick, the latest sample at or before it, and the age of that
sample (its staleness) is reported so a slow or stalled stream is visible.

All times are integer nanoseconds on the sensor clock, so ticks and stamps compare exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

NS = 1_000_000_000
ALL_TIME = (np.iinfo(np.int64).min, np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Stream:
    """The samples of one feature in one bag, sorted by stamp.

    ``order[i]`` is the position (in arrival order) of the ``i``-th sample by stamp: stamps
    from a sensor's clock usually arrive in order, but nothing guarantees it.
    """

    stamps: np.ndarray
    order: np.ndarray

    @staticmethod
    def from_arrival(stamps: Sequence[int]) -> Stream:
        arr = np.asarray(stamps, dtype=np.int64)
        order = np.argsort(arr, kind="stable")
        return Stream(arr[order], order)

    def __len__(self) -> int:
        return len(self.stamps)


@dataclass
class Timeline:
    """Ticks of one episode and, per feature, the stamp-sorted sample held at every tick."""

    ticks: np.ndarray
    index: dict[str, np.ndarray] = field(default_factory=dict)
    staleness_s: dict[str, float] = field(default_factory=dict)
    empty_reason: str = ""

    def __len__(self) -> int:
        return len(self.ticks)


def estimate_rate(stamp_sets: Sequence[np.ndarray]) -> float:
    """A topic's rate in Hz: 1 / median interval (robust to jitter and to a few dropouts)."""
    diffs = [np.diff(s) for s in stamp_sets if len(s) > 1]
    joined = np.concatenate(diffs) if diffs else np.zeros(0, dtype=np.int64)
    joined = joined[joined > 0]
    if not len(joined):
        raise ValueError("needs at least two samples with distinct stamps")
    return round(NS / float(np.median(joined)), 2)


def split_windows(stamps: np.ndarray, gap_s: float | None) -> list[tuple[int, int]]:
    """``[start, end]`` (ns) of each run of ``stamps`` with no gap longer than ``gap_s``.

    Without ``gap_s`` the whole bag is one window.
    """
    if gap_s is None or not len(stamps):
        return [ALL_TIME]
    breaks = np.flatnonzero(np.diff(stamps) > round(gap_s * NS))
    starts = np.concatenate([stamps[:1], stamps[breaks + 1]])
    ends = np.concatenate([stamps[breaks], stamps[-1:]])
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def align(
    streams: Mapping[str, Stream], fps: float, window: tuple[int, int] = ALL_TIME
) -> Timeline:
    """Zero-order-hold every stream onto ticks at ``fps`` inside ``window``.

    The first tick is the moment every stream has its first sample (earlier ticks would have
    to invent values); the last is at or before the earliest final sample, so no stream is
    held past its own end.
    """
    bounds: dict[str, tuple[int, int]] = {}
    for key, stream in streams.items():
        lo = int(np.searchsorted(stream.stamps, window[0], side="left"))
        hi = int(np.searchsorted(stream.stamps, window[1], side="right"))
        if lo >= hi:
            return Timeline(np.zeros(0, np.int64), empty_reason=f"{key!r} has no sample in it")
        bounds[key] = (lo, hi)
    start = max(int(streams[k].stamps[lo]) for k, (lo, _) in bounds.items())
    stop = min(int(streams[k].stamps[hi - 1]) for k, (_, hi) in bounds.items())
    if stop < start:
        return Timeline(np.zeros(0, np.int64), empty_reason="its streams do not overlap in time")
    period = NS / fps
    count = int(np.floor((stop - start) / period + 1e-9)) + 1
    ticks = start + np.round(np.arange(count) * period).astype(np.int64)
    ticks = ticks[ticks <= stop]
    timeline = Timeline(ticks)
    for key, stream in streams.items():
        held = np.searchsorted(stream.stamps, ticks, side="right") - 1
        timeline.index[key] = held
        timeline.staleness_s[key] = float((ticks - stream.stamps[held]).max()) / NS
    return timeline


__all__ = ["NS", "Stream", "Timeline", "align", "estimate_rate", "split_windows"]
