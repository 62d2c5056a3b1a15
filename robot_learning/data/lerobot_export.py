"""Export an episode store as a LeRobotDataset v3.0 directory (``dataset export-lerobot``).

Why streaming: episodes go one at a time into the data parquet (a row group each) and into one
MP4 per camera, so memory stays at one episode however large the store. Metadata (episodes,
tasks, statistics, info) is written last, once the data is complete; a failed export removes
its half-written directory so it never looks like a valid dataset.

LeRobot has one clock per frame, ``timestamp = frame_index / fps`` (its video lookup relies on
it), so the export writes nominal times and keeps each episode's first sensor time as
``timestamp_offset`` in the episode metadata.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from robot_learning.data.disk import disk_usage
from robot_learning.data.frames import FrameReader
from robot_learning.data.lerobot_format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILES_SIZE_MB,
    DATA_PATH,
    EPISODE_META_COLUMN,
    EPISODES_PATH,
    IMAGE_NAMES,
    INDEX_FEATURES,
    INFO_PATH,
    MAPPING_KEY,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILES_SIZE_MB,
    VIDEO_PATH,
    FeatureMap,
    LeRobotFormatError,
    Mode,
    aggregate_stats,
    arrow_column,
    episode_task,
    feature_maps,
    feature_stats,
    hf_feature,
    image_stats,
    sample_rows,
    write_tasks,
)
from robot_learning.data.lerobot_video import DEFAULT_CRF, VideoWriter, video_info
from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)


@dataclass
class ExportResult:
    out_dir: Path
    repo_id: str
    mode: Mode
    episodes: int
    frames: int
    tasks: list[str]
    features: dict[str, str]  # ours -> LeRobot's
    seconds: float = 0.0
    nbytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "repo_id": self.repo_id,
            "mode": self.mode,
            "episodes": self.episodes,
            "frames": self.frames,
            "tasks": self.tasks,
            "features": self.features,
            "seconds": round(self.seconds, 3),
            "bytes_on_disk": self.nbytes,
        }


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise LeRobotFormatError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise LeRobotFormatError(f"{out} is not empty; pass --overwrite to replace it")
        if not (out / INFO_PATH).is_file():
            raise LeRobotFormatError(
                f"{out} is not empty and holds no {INFO_PATH}: refusing to delete a directory "
                "that is not a LeRobot dataset"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def export_lerobot(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    mode: Mode = "video",
    repo_id: str | None = None,
    overwrite: bool = False,
    crf: int = DEFAULT_CRF,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the committed episodes of the store at ``store_path`` as a LeRobot v3.0 dataset."""
    if mode not in ("video", "image"):
        raise ValueError(f"mode must be 'video' or 'image', got {mode!r}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    with EpisodeStore.open(store_path, "r") as store:
        fps = _integer_fps(store)
        if store.async_streams:
            raise LeRobotFormatError(
                f"{store.root} records {list(store.async_streams)} at their own rate; LeRobot "
                "has one row per frame, so stores with async streams cannot be exported"
            )
        if store.n_episodes == 0:
            raise LeRobotFormatError(f"{store.root} has no committed episodes to export")
        maps = feature_maps(store)
        _prepare_out_dir(out, overwrite)
        repo = repo_id or f"local/{store.root.name}"
        try:
            writer = _Exporter(store, out, maps, fps, mode, crf)
            try:
                for ep in range(store.n_episodes):
                    writer.add_episode(ep)
                    if progress is not None:
                        progress(ep + 1, store.n_episodes)
            finally:
                writer.close()
            writer.finish(repo)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # a half-written dataset must not look valid
            raise
    result = ExportResult(
        out_dir=out,
        repo_id=repo,
        mode=mode,
        episodes=store.n_episodes,
        frames=writer.n_frames,
        tasks=writer.tasks,
        features={m.key: m.name for m in maps},
    )
    result.seconds = time.perf_counter() - t0
    result.nbytes = disk_usage(out)
    LOG.info("exported %d episodes to %s (%s mode)", result.episodes, out, mode)
    return result


def _integer_fps(store: EpisodeStore) -> int:
    fps = store.fps
    if not fps > 0 or abs(fps - round(fps)) > 1e-6:
        raise LeRobotFormatError(f"{store.root}: LeRobot needs an integer fps, the store has {fps}")
    return round(fps)


@dataclass
class _Exporter:
    """Streams episodes into the data parquet and the videos, then writes the metadata."""

    store: EpisodeStore
    out: Path
    maps: list[FeatureMap]
    fps: int
    mode: Mode
    crf: int
    n_frames: int = 0
    tasks: list[str] = field(default_factory=list)
    episode_rows: list[dict[str, Any]] = field(default_factory=list)
    lowdim: dict[str, list[np.ndarray]] = field(default_factory=dict)
    camera_stats: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.features = self._features()
        self.schema = self._schema()
        path = self.out / DATA_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.data_writer = pq.ParquetWriter(path, self.schema)
        self.videos: dict[str, VideoWriter] = {}
        self.readers = {
            m.key: FrameReader(self.store.array(m.key), self.store.root, m.key)
            for m in self.maps
            if m.is_camera
        }

    def _features(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for m in self.maps:
            if m.is_camera:
                out[m.name] = {
                    "dtype": self.mode,
                    "shape": list(m.spec.shape),
                    "names": IMAGE_NAMES,
                }
            else:
                names = list(m.spec.names) if m.spec.names and len(m.spec.shape) == 1 else None
                out[m.name] = {
                    "dtype": m.spec.dtype,
                    "shape": list(m.lerobot_shape),
                    "names": names,
                }
        return {**out, **INDEX_FEATURES}

    def _schema(self) -> pa.Schema:
        fields = []
        for name, ft in self.features.items():
            if ft["dtype"] == "video":
                continue
            if ft["dtype"] == "image":
                typ = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            else:
                zero = np.zeros((1, *ft["shape"]), dtype=ft["dtype"])
                typ = arrow_column(zero, tuple(ft["shape"])).type
            fields.append(pa.field(name, typ))
        hf = {n: hf_feature(ft) for n, ft in self.features.items() if ft["dtype"] != "video"}
        return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": hf}})})

    def add_episode(self, ep: int) -> None:
        meta = self.store.episode_meta(ep)
        start, stop = self.store.episode_range(ep)
        n = stop - start
        task = episode_task(meta)
        if task not in self.tasks:
            self.tasks.append(task)
        columns: dict[str, Any] = {}
        stats: dict[str, dict[str, np.ndarray]] = {}
        row: dict[str, Any] = {}
        for m in self.maps:
            if m.is_camera:
                frames = self.readers[m.key].read(np.arange(start, stop))
                stats[m.name] = image_stats(frames[sample_rows(n)])
                self.camera_stats.setdefault(m.name, []).append(stats[m.name])
                if self.mode == "image":
                    columns[m.name] = pa.array(
                        [{"bytes": imagecodecs.png_encode(f), "path": None} for f in frames],
                        self.schema.field(m.name).type,
                    )
                else:
                    row.update(self._write_video(m, frames))
                continue
            values = np.asarray(self.store.array(m.key)[start:stop]).reshape(n, *m.lerobot_shape)
            columns[m.name] = arrow_column(values, m.lerobot_shape)
            stats[m.name] = feature_stats(values)
            self.lowdim.setdefault(m.name, []).append(values)
        index_cols: dict[str, np.ndarray] = {
            "timestamp": (np.arange(n) / self.fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, ep, dtype=np.int64),
            "index": np.arange(self.n_frames, self.n_frames + n, dtype=np.int64),
            "task_index": np.full(n, self.tasks.index(task), dtype=np.int64),
        }
        for name, column in index_cols.items():
            columns[name] = pa.array(column)
            stats[name] = feature_stats(column)
            self.lowdim.setdefault(name, []).append(column)
        self.data_writer.write_table(
            pa.table([columns[f.name] for f in self.schema], schema=self.schema)
        )
        first_key = self.maps[0].key
        t_first = float(np.asarray(self.store.timestamps_array(first_key)[start : start + 1])[0])
        episode_meta = {**meta, "timestamp_offset": t_first}
        self.episode_rows.append(
            {
                "episode_index": ep,
                "tasks": [task],
                "length": n,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": self.n_frames,
                "dataset_to_index": self.n_frames + n,
                **row,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                **{f"stats/{k}/{s}": v.tolist() for k, st in stats.items() for s, v in st.items()},
                EPISODE_META_COLUMN: json.dumps(episode_meta, default=str),
            }
        )
        self.n_frames += n

    def _write_video(self, m: FeatureMap, frames: np.ndarray) -> dict[str, Any]:
        writer = self.videos.get(m.name)
        if writer is None:
            path = self.out / VIDEO_PATH.format(video_key=m.name, chunk_index=0, file_index=0)
            height, width = m.spec.shape[:2]
            writer = VideoWriter(path, self.fps, width, height, crf=self.crf)
            self.videos[m.name] = writer
        first = writer.n_frames
        for frame in frames:
            writer.write(frame)
        prefix = f"videos/{m.name}"
        return {
            f"{prefix}/chunk_index": 0,
            f"{prefix}/file_index": 0,
            f"{prefix}/from_timestamp": first / self.fps,
            f"{prefix}/to_timestamp": writer.n_frames / self.fps,
        }

    def close(self) -> None:
        self.data_writer.close()
        for writer in self.videos.values():
            writer.close()

    def finish(self, repo_id: str) -> None:
        """Write episodes, tasks, stats and info (after the data and videos are complete)."""
        episodes_path = self.out / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episode_rows), episodes_path)
        write_tasks(self.out / TASKS_PATH, self.tasks)
        stats: dict[str, Any] = {}
        for m in self.maps:
            if m.is_camera:
                stats[m.name] = aggregate_stats(self.camera_stats[m.name])
        for name, parts in self.lowdim.items():
            stats[name] = feature_stats(np.concatenate(parts))
        stats_json = {k: {s: v.tolist() for s, v in st.items()} for k, st in stats.items()}
        (self.out / STATS_PATH).write_text(json.dumps(stats_json, indent=2))
        for name, writer in self.videos.items():
            self.features[name]["info"] = video_info(writer.path)
        n_eps = len(self.episode_rows)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.store.robot or None,
            "total_episodes": n_eps,
            "total_frames": self.n_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILES_SIZE_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_MB,
            "fps": self.fps,
            "splits": {"train": f"0:{n_eps}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.mode == "video" else None,
            "features": self.features,
            MAPPING_KEY: self._mapping(repo_id),
        }
        (self.out / INFO_PATH).write_text(json.dumps(info, indent=4))

    def _mapping(self, repo_id: str) -> dict[str, Any]:
        """What import needs to restore our store: names, full specs, roles, store attrs."""
        language = {k: self.store.features[k].to_json() for k in self.store.language_keys}
        return {
            "version": 1,
            "repo_id": repo_id,
            "features": {
                m.name: {"key": m.key, "role": m.role, "spec": m.spec.to_json()} for m in self.maps
            },
            "language_features": language,
            "store": {
                k: v
                for k, v in self.store.info.items()
                if k not in ("features", "roles", "async_streams")
            },
        }


__all__ = ["ExportResult", "export_lerobot"]
