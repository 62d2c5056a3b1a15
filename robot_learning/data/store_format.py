"""What makes a directory an episode store, what counts as committed, and repair reports.

Why separate from :mod:`robot_learning.data.store`: these are the rules a reader applies to
whatever is on disk (possibly left by a killed writer), kept apart from the reading and writing
API so they can be read, and reviewed, on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.errors

from robot_learning.data import layout as L
from robot_learning.data.errors import StoreError, StoreFormatError
from robot_learning.specs import SpecDict, SpecError


@dataclass
class RepairReport:
    """What opening a store for writing removed: everything past the last commit."""

    episodes_dropped: int = 0
    steps_dropped: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    partial_files_removed: int = 0

    @property
    def repaired(self) -> bool:
        return bool(
            self.episodes_dropped
            or self.steps_dropped
            or any(self.rows_dropped.values())
            or self.partial_files_removed
        )

    def describe(self) -> str:
        if not self.repaired:
            return "nothing to repair"
        parts = []
        if self.episodes_dropped:
            parts.append(f"{self.episodes_dropped} uncommitted episode(s)")
        if self.steps_dropped:
            parts.append(f"{self.steps_dropped} uncommitted step(s)")
        extra = {k: v for k, v in self.rows_dropped.items() if v}
        if extra:
            parts.append("rows " + ", ".join(f"{k}: {v}" for k, v in sorted(extra.items())))
        if self.partial_files_removed:
            parts.append(f"{self.partial_files_removed} partial file(s)")
        return "dropped " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "episodes_dropped": self.episodes_dropped,
            "steps_dropped": self.steps_dropped,
            "rows_dropped": dict(self.rows_dropped),
            "partial_files_removed": self.partial_files_removed,
        }


def open_store_group(root: Path, mode: str) -> zarr.Group:
    try:
        group = zarr.open_group(str(root), mode="r" if mode == "r" else "r+")
    except (zarr.errors.ContainsArrayError, FileNotFoundError, ValueError, KeyError) as exc:
        raise StoreFormatError(f"{root} is not a zarr group: {exc}") from exc
    if group.metadata.zarr_format != 3:
        raise StoreFormatError(f"{root} is zarr format {group.metadata.zarr_format}; need format 3")
    attrs = group.attrs.get(L.ATTRS_KEY)
    if not isinstance(attrs, dict) or attrs.get("format") != L.FORMAT_NAME:
        raise StoreFormatError(
            f"{root} is a zarr store but not a robot_learning episode store (no "
            f"'{L.ATTRS_KEY}' attributes); import other formats with 'robot-learning dataset "
            "import-lerobot' or 'import-mcap'"
        )
    if int(attrs.get("version", 0)) > L.FORMAT_VERSION:
        raise StoreFormatError(
            f"{root} uses episode-store format version {attrs.get('version')}; this package "
            f"reads up to version {L.FORMAT_VERSION}: upgrade robot_learning"
        )
    for needed in (L.EPISODE_ENDS, L.META):
        if needed not in group:
            raise StoreFormatError(f"{root} is missing {needed!r}: not a complete episode store")
    return group


def committed_count(
    ends: np.ndarray,
    n_meta: int,
    main_lengths: Mapping[str, int],
    stream_ends: Mapping[str, np.ndarray],
    stream_lengths: Mapping[str, int],
) -> int:
    """Number of leading episodes whose commit is complete and whose data exists.

    ``main_lengths``/``stream_lengths`` are the rows on disk of each control-timeline and
    async array: an end past them was written before its data.
    """
    limit = min(n_meta, len(ends), *(len(v) for v in stream_ends.values()))
    max_rows = min(main_lengths.values(), default=np.iinfo(np.int64).max)
    n = 0
    previous = 0
    for i in range(limit):
        end = int(ends[i])
        if end <= previous or end > max_rows:
            break
        if any(
            int(v[i]) < (int(v[i - 1]) if i else 0) or int(v[i]) > stream_lengths[k]
            for k, v in stream_ends.items()
        ):
            break
        previous = end
        n = i + 1
    return n


def check_new_store(
    root: Path,
    features: SpecDict,
    actions: Sequence[str],
    async_streams: Sequence[str],
    fps: float,
    overwrite: bool,
) -> None:
    if root.exists() and any(root.iterdir()) and not overwrite:
        what = "an episode store" if (root / "zarr.json").exists() else "files"
        raise StoreError(
            f"{root} already holds {what}: pass resume/append to add episodes to it, or choose "
            "a new path"
        )
    if not len(features):
        raise SpecError("an episode store needs at least one feature")
    for name in [*actions, *async_streams]:
        if name not in features:
            raise SpecError(f"feature {name!r} is not in the store's features {features.names()}")
    for name, spec in features.items():
        if "/" in name or name.startswith(".") or not name:
            raise SpecError(f"feature name {name!r} cannot be a zarr array name")
        if spec.kind == "language" and name in async_streams:
            raise SpecError(f"language feature {name!r} is per episode, not an async stream")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")


__all__ = ["RepairReport", "check_new_store", "committed_count", "open_store_group"]
