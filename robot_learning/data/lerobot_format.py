"""LeRobotDataset v3.0: layout constants, feature naming, statistics and parquet helpers.

Why one module for the format: the exporter (:mod:`.lerobot_export`) and the importer
(:mod:`.lerobot_import`) must agree on every name, path template and column type; they take them
from here. The layout is LeRobot's ``codebase_version`` "v3.0" (as written by lerobot 0.4.x)::

    meta/info.json                        features (dtype/shape/names), fps, path templates, totals
    meta/stats.json                       per-feature min/max/mean/std/count/q01..q99
    meta/tasks.parquet                    task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, row range,
                                          video time ranges, per-episode stats
    data/chunk-000/file-000.parquet       one row per frame: a column per feature + timestamp,
                                          frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4   (video mode) every episode of one camera, back to back

Feature names follow LeRobot's conventions (see :func:`lerobot_name`); the mapping back to our
names and full specs, and each episode's own metadata, travel inside the dataset (``info.json``
key ``robot_learning`` and the episodes column ``robot_learning/episode_meta``) so that import
restores the original store.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from robot_learning.data.errors import StoreError
from robot_learning.data.store import EpisodeStore
from robot_learning.specs import FeatureSpec

LOG = logging.getLogger(__name__)
Mode = Literal["video", "image"]
CODEBASE_VERSION = "v3.0"
MAPPING_KEY = "robot_learning"
EPISODE_META_COLUMN = "robot_learning/episode_meta"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
CHUNKS_SIZE, DATA_FILES_SIZE_MB, VIDEO_FILES_SIZE_MB = 1000, 100, 200
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
INDEX_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
IMAGE_NAMES = ["height", "width", "channels"]
MAX_STAT_FRAMES = 100  # frames per episode sampled for image statistics


class LeRobotFormatError(StoreError):
    """A directory is not a LeRobot v3.0 dataset, or a store cannot be expressed as one."""


@dataclass(frozen=True)
class FeatureMap:
    """One of our features and its LeRobot counterpart."""

    key: str
    name: str
    spec: FeatureSpec
    role: str

    @property
    def is_camera(self) -> bool:
        return self.spec.kind == "rgb"

    @property
    def lerobot_shape(self) -> tuple[int, ...]:
        return self.spec.shape or (1,)


def lerobot_name(key: str, spec: FeatureSpec, role: str) -> str:
    """Our name -> LeRobot's: ``action``, ``observation.images.<cam>``, ``observation.<key>``.

    ``<cam>`` drops an ``_rgb`` suffix (``scene_rgb`` -> ``observation.images.scene``); other
    action features become ``action.<key>``.
    """
    if role == "action":
        return "action" if key == "action" else f"action.{key}"
    if spec.kind == "rgb":
        return f"observation.images.{key.removesuffix('_rgb') or key}"
    return f"observation.{key}"


def feature_maps(store: EpisodeStore) -> list[FeatureMap]:
    """The exported features of ``store`` in LeRobot's order (observations, then actions)."""
    maps = [
        FeatureMap(k, lerobot_name(k, store.features[k], role), store.features[k], role)
        for role in ("observation", "action")
        for k in store.array_keys(role)
    ]
    seen: dict[str, str] = {}
    for m in maps:
        if m.name in seen or m.name in INDEX_FEATURES:
            raise LeRobotFormatError(
                f"features {seen.get(m.name, m.name)!r} and {m.key!r} both map to the LeRobot "
                f"name {m.name!r}; rename one of them"
            )
        seen[m.name] = m.key
    return maps


# ---- statistics ---------------------------------------------------------------------------------
def feature_stats(values: np.ndarray, axis: int | tuple[int, ...] = 0) -> dict[str, np.ndarray]:
    """LeRobot's statistics of ``values`` reduced over ``axis`` (count is the sample count)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    out = {
        "min": x.min(axis=axis),
        "max": x.max(axis=axis),
        "mean": x.mean(axis=axis),
        "std": x.std(axis=axis),
        "count": np.array([len(x)], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        out[name] = np.quantile(x, q, axis=axis)
    return out


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics in [0, 1], shaped ``(3, 1, 1)`` like LeRobot's."""
    stride = max(1, max(frames.shape[1:3]) // 150)
    stats = feature_stats(frames[:, ::stride, ::stride] / 255.0, axis=(0, 1, 2))
    return {k: v if k == "count" else v.reshape(3, 1, 1) for k, v in stats.items()}


def aggregate_stats(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode statistics as LeRobot does: exact count, min, max, mean and std;
    quantiles as the count-weighted mean of the episodes' quantiles."""
    counts = np.array([float(p["count"][0]) for p in parts])
    weights = (counts / counts.sum()).reshape(-1, *([1] * np.ndim(parts[0]["mean"])))
    means = np.stack([p["mean"] for p in parts])
    mean = (weights * means).sum(axis=0)
    var = (weights * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(axis=0)
    out = {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }
    for name in QUANTILES:
        out[name] = (weights * np.stack([p[name] for p in parts])).sum(axis=0)
    return out


def sample_rows(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_STAT_FRAMES)).round().astype(np.int64))


# ---- parquet helpers ----------------------------------------------------------------------------
def arrow_column(values: np.ndarray, shape: tuple[int, ...]) -> pa.Array:
    """Rows of ``shape`` as LeRobot stores them: scalar, fixed-size list, or nested lists."""
    n = len(values)
    if shape == (1,):
        return pa.array(values.reshape(n))
    arr = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(shape):
        arr = pa.FixedSizeListArray.from_arrays(arr, size)
    if len(shape) > 1:  # datasets' ArrayND storage is plain nested lists
        target = pa.from_numpy_dtype(values.dtype)
        for _ in shape:
            target = pa.list_(target)
        arr = arr.cast(target)
    return arr


def hf_feature(ft: Mapping[str, Any]) -> dict[str, Any]:
    """The ``datasets`` feature JSON LeRobot's parquet files carry in their schema metadata."""
    dtype, shape = ft["dtype"], list(ft["shape"])
    if dtype == "image":
        return {"_type": "Image"}
    if shape == [1]:
        return {"dtype": dtype, "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": dtype, "_type": "Value"}, "length": shape[0], "_type": "List"}
    return {"shape": shape, "dtype": dtype, "_type": f"Array{len(shape)}D"}


def column_to_numpy(
    column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], what: str
) -> np.ndarray:
    """A (possibly nested) list column as ``[n, *shape]``; raises naming ``what`` if ragged."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    n = len(arr)
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
        or pa.types.is_large_list(arr.type)
    ):
        arr = arr.flatten()
    flat = arr.to_numpy(zero_copy_only=False)
    if flat.size != n * math.prod(shape):
        raise LeRobotFormatError(f"{what}: {flat.size} values for {n} rows of shape {shape}")
    return flat.reshape(n, *shape)


def write_tasks(path: Path, tasks: list[str]) -> None:
    """``meta/tasks.parquet`` as pandas writes it: the task string is the (named-less) index."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "__index_level_0__": pa.array(tasks, pa.string()),
        }
    ).replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    pq.write_table(table, path)


def read_tasks(root: Path) -> list[str]:
    """Task strings ordered by ``task_index`` from ``meta/tasks.parquet``."""
    table = pq.read_table(root / TASKS_PATH)
    names = [c for c in table.column_names if c != "task_index"]
    if "task_index" not in table.column_names or not names:
        raise LeRobotFormatError(f"{root / TASKS_PATH}: expected task strings and task_index")
    col = "task" if "task" in names else names[0]
    order = np.argsort(table.column("task_index").to_numpy())
    tasks = table.column(col).to_pylist()
    return [str(tasks[i]) for i in order]


def episode_task(meta: Mapping[str, Any]) -> str:
    """The LeRobot task of an episode: its language instruction, else its task name."""
    return str(meta.get("instruction") or meta.get("task") or "")


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json`` of a v3 dataset; older or foreign directories fail with the reason."""
    path = root / INFO_PATH
    if not path.is_file():
        raise LeRobotFormatError(f"{root} is not a LeRobot dataset: {INFO_PATH} is missing")
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LeRobotFormatError(f"{path} is not valid JSON: {exc}") from exc
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise LeRobotFormatError(
            f"{root} is a LeRobot {version or 'unversioned'} dataset; only v3.x is read. Convert "
            "it with lerobot's lerobot.datasets.v30.convert_dataset_v21_to_v30 first"
        )
    for needed in ("fps", "features", "data_path"):
        if needed not in info:
            raise LeRobotFormatError(f"{path} has no {needed!r} entry")
    return info


__all__ = [
    "CODEBASE_VERSION",
    "EPISODE_META_COLUMN",
    "MAPPING_KEY",
    "FeatureMap",
    "LeRobotFormatError",
    "aggregate_stats",
    "arrow_column",
    "column_to_numpy",
    "episode_task",
    "feature_maps",
    "feature_stats",
    "hf_feature",
    "image_stats",
    "lerobot_name",
    "read_info",
    "read_tasks",
    "sample_rows",
    "write_tasks",
]
