"""Import a LeRobotDataset v3.x directory into a new episode store (``dataset import-lerobot``).

Reads the parquet files with pyarrow and the MP4s with PyAV (H.264 and AV1, LeRobot's default),
decoding each frame once. Our own exports get their names, specs, roles, episode metadata and
timestamps back from the mapping they carry; other datasets keep LeRobot's names, with kinds
and roles derived from the features (see docs/lerobot.md).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from robot_learning.data import layout as L
from robot_learning.data.lerobot_format import (
    EPISODE_META_COLUMN,
    EPISODES_DIR,
    INDEX_FEATURES,
    MAPPING_KEY,
    LeRobotFormatError,
    column_to_numpy,
    read_info,
    read_tasks,
)
from robot_learning.data.lerobot_video import VideoReader
from robot_learning.data.store import EpisodeStore
from robot_learning.specs import FeatureSpec, SpecDict

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Incoming:
    """A LeRobot feature and the store feature it becomes."""

    name: str
    key: str
    spec: FeatureSpec
    role: str
    dtype: str  # "video", "image" or a numpy dtype name

    @property
    def column_shape(self) -> tuple[int, ...]:
        return self.spec.shape or (1,)


@dataclass
class ImportResult:
    out_store: Path
    src_dir: Path
    episodes: int
    frames: int
    tasks: list[str]
    features: dict[str, str]  # LeRobot's -> ours
    skipped: list[str]
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "out_store": str(self.out_store),
            "src_dir": str(self.src_dir),
            "episodes": self.episodes,
            "frames": self.frames,
            "tasks": self.tasks,
            "features": self.features,
            "skipped_features": self.skipped,
            "seconds": round(self.seconds, 3),
        }


def _derive_feature(name: str, ft: Mapping[str, Any]) -> _Incoming | None:
    """Our spec for a feature of a dataset we did not write (None: not representable)."""
    dtype, shape = str(ft["dtype"]), tuple(int(s) for s in ft["shape"])
    role = "action" if name.split(".")[0] == "action" else "observation"
    if dtype in ("video", "image"):
        names = list(ft.get("names") or [])
        if names and names[0] in ("channel", "channels") and len(shape) == 3:
            shape = (shape[1], shape[2], shape[0])
        if len(shape) != 3 or shape[2] != 3:
            return None
        return _Incoming(name, name, FeatureSpec(shape, "uint8", "rgb"), role, dtype)
    if dtype in ("string", "str"):
        return None
    try:
        np.dtype(dtype)
    except TypeError:
        return None
    labels: Any = ft.get("names")
    if isinstance(labels, dict) and len(labels) == 1:
        labels = next(iter(labels.values()))
    ok_names = isinstance(labels, list) and len(labels) == math.prod(shape) and len(shape) == 1
    spec = FeatureSpec(shape, dtype, "lowdim", names=tuple(map(str, labels)) if ok_names else None)
    return _Incoming(name, name, spec, role, dtype)


def incoming_features(
    info: Mapping[str, Any],
) -> tuple[list[_Incoming], dict[str, FeatureSpec], list[str]]:
    """(features to import, language features, names skipped) of a dataset's ``info``."""
    mapping = (info.get(MAPPING_KEY) or {}).get("features", {})
    out: list[_Incoming] = []
    skipped: list[str] = []
    for name, ft in info["features"].items():
        if name in INDEX_FEATURES:
            continue
        if name in mapping:
            m = mapping[name]
            spec = FeatureSpec.from_json(m["spec"])
            out.append(_Incoming(name, str(m["key"]), spec, str(m["role"]), str(ft["dtype"])))
            continue
        feature = _derive_feature(name, ft)
        if feature is None:
            LOG.warning(
                "skipping LeRobot feature %r (%s %s): no store equivalent",
                name,
                ft.get("dtype"),
                ft.get("shape"),
            )
            skipped.append(name)
        else:
            out.append(feature)
    language = {
        k: FeatureSpec.from_json(v)
        for k, v in ((info.get(MAPPING_KEY) or {}).get("language_features") or {}).items()
    }
    return out, language, skipped


def read_episodes(root: Path) -> list[dict[str, Any]]:
    """Rows of ``meta/episodes/*/*.parquet`` (without per-episode stats), by episode index."""
    paths = sorted((root / EPISODES_DIR).glob("*/*.parquet"))
    if not paths:
        raise LeRobotFormatError(f"{root}: no episode metadata under {EPISODES_DIR}/")
    rows: list[dict[str, Any]] = []
    for path in paths:
        table = pq.read_table(path)
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows.extend(table.select(keep).to_pylist())
    return sorted(rows, key=lambda r: int(r["episode_index"]))


class _DataFiles:
    """Rows of one episode from the data parquet files (one file cached at a time)."""

    def __init__(self, root: Path, template: str) -> None:
        self.root, self.template = root, template
        self._path: Path | None = None
        self._table: pa.Table | None = None

    def episode(self, row: Mapping[str, Any]) -> pa.Table:
        path = self.root / self.template.format(
            chunk_index=int(row.get("data/chunk_index", 0)),
            file_index=int(row.get("data/file_index", 0)),
        )
        if path != self._path:
            if not path.is_file():
                raise LeRobotFormatError(f"episode {row['episode_index']}: {path} is missing")
            self._table, self._path = pq.read_table(path), path
        assert self._table is not None
        ep = int(row["episode_index"])
        rows = self._table.filter(pc.equal(self._table.column("episode_index"), ep))
        return rows.sort_by("frame_index")


def _decode_image(cell: Mapping[str, Any] | None, root: Path, what: str) -> np.ndarray:
    if cell is None:
        raise LeRobotFormatError(f"{what}: empty image cell")
    data = cell.get("bytes")
    if data is None and cell.get("path"):
        data = (root / str(cell["path"])).read_bytes()
    if data is None:
        raise LeRobotFormatError(f"{what}: image cell has neither bytes nor a path")
    image = np.asarray(imagecodecs.imread(data))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False)


def _episode_meta(row: Mapping[str, Any], root: Path) -> tuple[dict[str, Any], float, Any]:
    """(metadata for ``new_episode``, timestamp offset, success) of one episode row."""
    tasks = [str(t) for t in row.get("tasks") or []]
    raw = row.get(EPISODE_META_COLUMN)
    if raw:
        meta = dict(json.loads(raw))
        offset = float(meta.pop("timestamp_offset", 0.0) or 0.0)
        success = meta.pop("success", None)
        for key in ("index", "length", "end_time"):
            meta.pop(key, None)
        return meta, offset, success
    meta = {
        "task": tasks[0] if tasks else "",
        "instruction": tasks[0] if tasks else "",
        "source": f"lerobot:{root.name}",
    }
    if len(tasks) > 1:
        meta["tasks"] = tasks
    return meta, 0.0, None


def import_lerobot(
    src_dir: str | Path,
    out_store: str | Path,
    *,
    overwrite: bool = False,
    image_format: str = L.DEFAULT_IMAGE_FORMAT,
    image_quality: int = L.DEFAULT_IMAGE_QUALITY,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Read a LeRobot v3.0 dataset directory into a new episode store at ``out_store``."""
    t0 = time.perf_counter()
    root = Path(src_dir)
    info = read_info(root)
    fps = float(info["fps"])
    features, language, skipped = incoming_features(info)
    if not features:
        raise LeRobotFormatError(f"{root}: no feature can be imported (skipped: {skipped})")
    tasks = read_tasks(root)
    episodes = read_episodes(root)
    mapping = info.get(MAPPING_KEY) or {}
    reserved = {
        "format",
        "version",
        "features",
        "roles",
        "fps",
        "robot",
        "async_streams",
        "created",
    }
    extra = {k: v for k, v in (mapping.get("store") or {}).items() if k not in reserved}
    extra["imported_from"] = {
        "path": str(root.resolve()),
        "codebase_version": info["codebase_version"],
        "repo_id": mapping.get("repo_id"),
    }
    specs = SpecDict({**{f.key: f.spec for f in features}, **language})
    actions = [f.key for f in features if f.role == "action"]
    data = _DataFiles(root, str(info["data_path"]))
    readers: dict[Path, VideoReader] = {}
    n_frames = 0
    try:
        with EpisodeStore.create(
            out_store,
            specs,
            actions=actions,
            fps=fps,
            robot=str(info.get("robot_type") or ""),
            image_format=image_format,
            image_quality=image_quality,
            overwrite=overwrite,
            extra_attrs=extra,
        ) as store:
            for i, row in enumerate(episodes):
                n_frames += _import_episode(store, root, info, features, row, data, readers)
                if progress is not None:
                    progress(i + 1, len(episodes))
    finally:
        for reader in readers.values():
            reader.close()
    result = ImportResult(
        out_store=Path(out_store),
        src_dir=root,
        episodes=len(episodes),
        frames=n_frames,
        tasks=tasks,
        features={f.name: f.key for f in features},
        skipped=skipped,
    )
    result.seconds = time.perf_counter() - t0
    LOG.info("imported %d episodes from %s into %s", result.episodes, root, out_store)
    return result


def _import_episode(
    store: EpisodeStore,
    root: Path,
    info: Mapping[str, Any],
    features: list[_Incoming],
    row: Mapping[str, Any],
    data: _DataFiles,
    readers: dict[Path, VideoReader],
) -> int:
    ep = int(row["episode_index"])
    table = data.episode(row)
    n = table.num_rows
    if n != int(row.get("length", n)):
        raise LeRobotFormatError(
            f"{root}: episode {ep} has {n} data rows but its metadata says length {row['length']}"
        )
    if n == 0:
        LOG.warning("%s: episode %d has no frames; skipped", root, ep)
        return 0
    fps = round(float(info["fps"]))
    values: dict[str, np.ndarray] = {}
    for f in features:
        what = f"{root}: episode {ep} feature {f.name!r}"
        if f.dtype == "video":
            path = root / str(info["video_path"]).format(
                video_key=f.name,
                chunk_index=int(row.get(f"videos/{f.name}/chunk_index", 0)),
                file_index=int(row.get(f"videos/{f.name}/file_index", 0)),
            )
            if path not in readers:
                readers[path] = VideoReader(path, fps)
            start = round(float(row.get(f"videos/{f.name}/from_timestamp", 0.0)) * fps)
            values[f.key] = readers[path].read(start, start + n)
        elif f.dtype == "image":
            cells = table.column(f.name).to_pylist()
            values[f.key] = np.stack([_decode_image(c, root, what) for c in cells])
        else:
            col = column_to_numpy(table.column(f.name), f.column_shape, what)
            values[f.key] = col.reshape(n, *f.spec.shape).astype(f.spec.dtype, copy=False)
        if values[f.key].shape[1:] != f.spec.shape:
            raise LeRobotFormatError(
                f"{what}: frames are {values[f.key].shape[1:]}, info.json says {f.spec.shape}"
            )
    meta, offset, success = _episode_meta(row, root)
    times = offset + table.column("timestamp").to_numpy().astype(np.float64)
    writer = store.new_episode(**meta)
    try:
        for i in range(n):
            writer.add_step({k: v[i] for k, v in values.items()}, float(times[i]))
        writer.commit(success=success)
    except BaseException:
        if writer.is_open:
            writer.discard()
        raise
    return n


__all__ = ["ImportResult", "import_lerobot", "incoming_features", "read_episodes"]
