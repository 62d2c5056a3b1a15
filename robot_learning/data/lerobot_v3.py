"""LeRobotDataset v3.0 interop: the public API of export, import and export checking.

``export_lerobot`` writes a store as a LeRobot v3.0 directory (:mod:`.lerobot_export`),
``import_lerobot`` reads one into a new store (:mod:`.lerobot_import`); the format itself
(paths, naming, statistics, column types) is in :mod:`.lerobot_format`, the MP4 side in
:mod:`.lerobot_video`. :func:`write_expected` produces what the real lerobot package must return
for an export, for ``scripts/bench/lerobot_peer.py verify-export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.data.frames import FrameReader
from robot_learning.data.lerobot_export import ExportResult, export_lerobot
from robot_learning.data.lerobot_format import (
    CODEBASE_VERSION,
    EPISODE_META_COLUMN,
    MAPPING_KEY,
    FeatureMap,
    LeRobotFormatError,
    aggregate_stats,
    episode_task,
    feature_maps,
    feature_stats,
    image_stats,
    lerobot_name,
    read_info,
    read_tasks,
)
from robot_learning.data.lerobot_import import ImportResult, import_lerobot, read_episodes
from robot_learning.data.store import EpisodeStore


def expected_arrays(store_path: str | Path, frame_stride: int = 10) -> dict[str, np.ndarray]:
    """What LeRobot must return for an export of ``store_path`` (the ``--expect`` npz of
    ``scripts/bench/lerobot_peer.py verify-export``): every low-dim frame under its LeRobot name,
    ``frame_index``/``index``, ``episode_ends``, one task per episode, and camera frames at
    ``frame_rows`` (every ``frame_stride``-th row plus each episode's first and last)."""
    with EpisodeStore.open(store_path, "r") as store:
        maps = feature_maps(store)
        n = store.n_steps
        ends = store.episode_ends
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        out: dict[str, np.ndarray] = {}
        for m in maps:
            if not m.is_camera:
                out[m.name] = np.asarray(store.array(m.key)[:n]).reshape(n, *m.lerobot_shape)
        out["frame_index"] = np.concatenate([np.arange(e - s) for s, e in zip(starts, ends)])
        out["index"] = np.arange(n, dtype=np.int64)
        out["episode_ends"] = ends
        out["tasks"] = np.array([episode_task(m) for m in store.episodes_meta()], dtype=str)
        rows = np.array(
            sorted({*range(0, n, max(1, frame_stride)), *starts.tolist(), *(ends - 1).tolist()}),
            dtype=np.int64,
        )
        out["frame_rows"] = rows
        for m in maps:
            if m.is_camera:
                reader = FrameReader(store.array(m.key), store.root, m.key)
                out[f"frames/{m.name}"] = reader.read(rows)
    return out


def write_expected(store_path: str | Path, npz_path: str | Path, frame_stride: int = 10) -> Path:
    """Save :func:`expected_arrays` as an uncompressed npz (no pickled objects)."""
    path = Path(npz_path)
    arrays: dict[str, Any] = expected_arrays(store_path, frame_stride)
    np.savez(path, **arrays)
    return path


__all__ = [
    "CODEBASE_VERSION",
    "EPISODE_META_COLUMN",
    "MAPPING_KEY",
    "ExportResult",
    "FeatureMap",
    "ImportResult",
    "LeRobotFormatError",
    "aggregate_stats",
    "episode_task",
    "expected_arrays",
    "export_lerobot",
    "feature_maps",
    "feature_stats",
    "image_stats",
    "import_lerobot",
    "lerobot_name",
    "read_episodes",
    "read_info",
    "read_tasks",
    "write_expected",
]
