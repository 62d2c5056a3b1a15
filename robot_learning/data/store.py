"""``EpisodeStore``: a Zarr v3 store of demonstration episodes that survives a killed writer.

Why: a recording session must never lose a committed demonstration. Arrays are appended first
and ``meta/episode_ends`` is written last, so an episode exists only once that write lands (zarr's
local store replaces files atomically). Opening a store for writing takes the writer lock and
repairs what a killed writer left: rows past the last commit, metadata of an uncommitted episode,
half-written temporary files. The repair is reported, never silent.

Reading never needs the lock: readers see exactly the committed episodes, even while a writer
is appending the next one.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import zarr
import zarr.errors

from robot_learning.data import layout as L
from robot_learning.data.disk import disk_usage
from robot_learning.data.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreNotFoundError,
    StoreReadOnlyError,
    is_disk_full,
)
from robot_learning.data.lock import WriterLock
from robot_learning.data.store_format import (
    RepairReport,
    check_new_store,
    committed_count,
    open_store_group,
)
from robot_learning.specs import SpecDict, SpecError

if TYPE_CHECKING:
    from robot_learning.data.writer import EpisodeWriter

LOG = logging.getLogger(__name__)
Role = Literal["observation", "action"]
EPISODE_FIELDS = (
    "task",
    "instruction",
    "success",
    "robot",
    "fps",
    "start_time",
    "operator",
    "source",
)


class EpisodeStore:
    """A store of episodes: create with :meth:`create`, open with :meth:`open`.

    ``mode="r"`` reads committed episodes; ``mode="a"`` also appends (one writer per store;
    opening repairs the uncommitted tail a killed writer left and reports it in
    :attr:`repair_report`).
    """

    def __init__(self, root: Path, group: zarr.Group, mode: str, lock: WriterLock | None) -> None:
        self.root = root
        self.group = group
        self.mode = mode
        self._lock = lock
        attrs: dict[str, Any] = dict(cast("dict[str, Any]", group.attrs.get(L.ATTRS_KEY) or {}))
        self.info: dict[str, Any] = attrs
        self.features = SpecDict.from_json(attrs["features"])
        self.roles: dict[str, Role] = dict(attrs.get("roles") or {})
        self.async_streams: tuple[str, ...] = tuple(
            str(k) for k in attrs.get("async_streams") or ()
        )
        self.repair_report = RepairReport()
        self._ends = np.zeros(0, dtype=np.int64)
        self._episodes: list[dict[str, Any]] = []
        self._stream_ends: dict[str, np.ndarray] = {}
        self._writer: EpisodeWriter | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self.refresh()

    # ---- creation / opening --------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        features: SpecDict,
        *,
        actions: Sequence[str] = ("action",),
        fps: float,
        robot: str = "",
        async_streams: Sequence[str] = (),
        image_format: str = L.DEFAULT_IMAGE_FORMAT,
        image_quality: int = L.DEFAULT_IMAGE_QUALITY,
        overwrite: bool = False,
        extra_attrs: Mapping[str, Any] | None = None,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` and open it for appending.

        ``actions`` names the action features (the rest are observations); ``async_streams``
        names features recorded at their own rate (with :meth:`EpisodeWriter.add_sample`).
        """
        root = Path(path)
        check_new_store(root, features, actions, async_streams, fps, overwrite)
        if overwrite and root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(root)
        lock.acquire()
        try:
            # "a", not "w": "w" would empty the directory, taking the lock file with it
            group = zarr.open_group(str(root), mode="a", zarr_format=3)
            roles = {k: ("action" if k in actions else "observation") for k in features}
            group.attrs[L.ATTRS_KEY] = {
                "format": L.FORMAT_NAME,
                "version": L.FORMAT_VERSION,
                "features": features.to_json(),
                "roles": roles,
                "fps": float(fps),
                "robot": robot,
                "async_streams": list(async_streams),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                **dict(extra_attrs or {}),
            }
            for key, spec in features.items():
                if not L.is_stored_array(spec):
                    continue
                group.create_array(
                    f"{L.DATA}/{key}",
                    shape=(0, *spec.shape),
                    dtype=spec.dtype,
                    **L.array_encoding(spec, image_format, image_quality),
                )
                group.create_array(
                    f"{L.TIMESTAMPS}/{key}",
                    shape=(0,),
                    dtype="float64",
                    chunks=(L.LOWDIM_CHUNK_ROWS,),
                    compressors=L.lowdim_compressor(),
                )
            for key in async_streams:
                group.create_array(
                    f"{L.STREAM_ENDS}/{key}",
                    shape=(0,),
                    dtype="int64",
                    chunks=(L.META_CHUNK_ROWS,),
                    fill_value=L.ENDS_FILL,
                )
            group.require_group(L.META).attrs["episodes"] = []
            group.create_array(
                L.EPISODE_ENDS,
                shape=(0,),
                dtype="int64",
                chunks=(L.META_CHUNK_ROWS,),
                fill_value=L.ENDS_FILL,
            )
        except BaseException as exc:
            lock.release()
            if is_disk_full(exc):
                raise StoreFullError(f"disk full while creating {root}") from exc
            raise
        LOG.info("created episode store %s (%d features)", root, len(features))
        return cls(root, group, "a", lock)

    @classmethod
    def open(cls, path: str | Path, mode: Literal["r", "a"] = "r") -> EpisodeStore:
        """Open an existing store; ``mode="a"`` takes the writer lock and repairs the tail."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' (read) or 'a' (append), got {mode!r}")
        root = Path(path)
        if not (root / "zarr.json").is_file():
            hint = " (the directory exists but holds no zarr.json)" if root.is_dir() else ""
            raise StoreNotFoundError(f"no episode store at {root}{hint}")
        lock: WriterLock | None = None
        if mode == "a":
            lock = WriterLock(root)
            lock.acquire()
        try:
            group = open_store_group(root, mode)
            store = cls(root, group, mode, lock)
            if mode == "a":
                store._repair()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return store

    def close(self) -> None:
        """Finish (discard) an open episode writer and release the writer lock."""
        if self._writer is not None and self._writer.is_open:
            LOG.warning("closing %s with an episode in progress: discarding it", self.root)
            self._writer.discard()
        self._writer = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- committed state -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the committed episodes (a reader sees new commits after this)."""
        ends_arr = self._array(L.EPISODE_ENDS)
        ends = np.asarray(ends_arr[:], dtype=np.int64)
        episodes = self._attr_episodes()
        stream_ends = {
            key: np.asarray(self._array(f"{L.STREAM_ENDS}/{key}")[:], dtype=np.int64)
            for key in self.async_streams
        }
        stream_lengths = {k: self.array(k).shape[0] for k in self.async_streams}
        n = committed_count(ends, len(episodes), self._main_lengths(), stream_ends, stream_lengths)
        self._ends = ends[:n]
        self._episodes = episodes[:n]
        self._stream_ends = {k: v[:n] for k, v in stream_ends.items()}

    @property
    def n_episodes(self) -> int:
        return len(self._ends)

    def __len__(self) -> int:
        return self.n_episodes

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def fps(self) -> float:
        return float(self.info.get("fps", 0.0))

    @property
    def robot(self) -> str:
        return str(self.info.get("robot", ""))

    @property
    def writable(self) -> bool:
        return self.mode == "a" and self._lock is not None

    def array_keys(self, role: Role | None = None) -> list[str]:
        """Stored (array) feature names, optionally only observations or only actions."""
        return [
            k
            for k, spec in self.features.items()
            if L.is_stored_array(spec) and (role is None or self.roles.get(k) == role)
        ]

    @property
    def language_keys(self) -> list[str]:
        return [k for k, spec in self.features.items() if spec.kind == "language"]

    def array(self, key: str) -> zarr.Array:
        """The concatenated ``data/<key>`` array (may be longer than the committed part)."""
        self._check_key(key)
        return self._array(f"{L.DATA}/{key}")

    def timestamps_array(self, key: str) -> zarr.Array:
        self._check_key(key)
        return self._array(f"{L.TIMESTAMPS}/{key}")

    def episode_range(self, index: int, key: str | None = None) -> tuple[int, int]:
        """``(start, stop)`` rows of episode ``index`` in ``data/<key>`` (control timeline)."""
        index = self._check_index(index)
        ends = self._stream_ends.get(key, self._ends) if key else self._ends
        start = int(ends[index - 1]) if index > 0 else 0
        return start, int(ends[index])

    def episode_length(self, index: int) -> int:
        start, stop = self.episode_range(index)
        return stop - start

    def episode_meta(self, index: int) -> dict[str, Any]:
        return dict(self._episodes[self._check_index(index)])

    def episodes_meta(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self._episodes]

    def read_episode(
        self, index: int, keys: Sequence[str] | None = None, with_timestamps: bool = False
    ) -> dict[str, Any]:
        """Arrays of one episode (all stored features by default) plus its language strings.

        Timestamps come back as ``"<key>.t"`` entries when ``with_timestamps``. A chunk that
        does not decode raises :class:`StoreCorruptError` naming the episode and key.
        """
        out: dict[str, Any] = {}
        for key in keys if keys is not None else [*self.array_keys(), *self.language_keys]:
            spec = self.features[key]
            if spec.kind == "language":
                out[key] = self.episode_meta(index).get("language", {}).get(key, "")
                continue
            start, stop = self.episode_range(index, key)
            out[key] = self._read(key, index, self.array(key), start, stop)
            if with_timestamps:
                out[f"{key}.t"] = self._read(key, index, self.timestamps_array(key), start, stop)
        return out

    def iter_episodes(self, keys: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        for i in range(self.n_episodes):
            yield self.read_episode(i, keys)

    def _read(self, key: str, index: int, arr: zarr.Array, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(arr[start:stop])
        except Exception as exc:
            raise StoreCorruptError(
                f"{self.root}: episode {index} key {key!r} (rows {start}..{stop}) does not "
                f"decode: {type(exc).__name__}: {exc}"
            ) from exc

    # ---- writing -------------------------------------------------------------------------------
    def new_episode(self, **meta: Any) -> EpisodeWriter:
        """Start recording an episode; nothing is visible to readers until ``commit()``."""
        from robot_learning.data.writer import EpisodeWriter

        self.require_writable("new_episode")
        if self._writer is not None and self._writer.is_open:
            raise StoreError("an episode is already being recorded: commit() or discard() it")
        self._writer = EpisodeWriter(self, meta)
        return self._writer

    def require_writable(self, what: str) -> None:
        if not self.writable:
            raise StoreReadOnlyError(
                f"{what}: {self.root} is open read-only; open it with mode='a' to append"
            )

    def set_attrs(self, **attrs: Any) -> None:
        """Update the store's ``robot_learning`` root attributes (e.g. cached statistics)."""
        self.require_writable("set_attrs")
        self.info = {**self.info, **attrs}
        self.group.attrs[L.ATTRS_KEY] = self.info

    def _append_commit(
        self,
        main_rows: Mapping[str, np.ndarray],
        main_times: Mapping[str, np.ndarray],
        async_rows: Mapping[str, np.ndarray],
        async_times: Mapping[str, np.ndarray],
        n_steps: int,
        meta: dict[str, Any],
        preallocated: Mapping[str, int],
    ) -> int:
        """Write the buffered rows, then metadata, then ``episode_ends`` (the commit).

        Called by :class:`EpisodeWriter`; image rows may already be on disk (``preallocated``
        gives how many rows each key has written beyond the committed end).
        """
        index = self.n_episodes
        base = self.n_steps
        end = base + n_steps
        try:
            for key in self.array_keys():
                if key in self.async_streams:
                    continue
                arr = self.array(key)
                if key in main_rows:
                    arr.resize((end, *arr.shape[1:]))
                    arr[base:end] = main_rows[key]
                else:  # streamed images: already written, trim any over-allocation
                    if preallocated.get(key, 0) < n_steps:
                        raise StoreError(f"episode is missing frames of {key!r}")
                    arr.resize((end, *arr.shape[1:]))
                ts = self.timestamps_array(key)
                ts.resize((end,))
                ts[base:end] = main_times[key]
            new_stream_ends: dict[str, int] = {}
            for key in self.async_streams:
                s_base = int(self._stream_ends[key][-1]) if index else 0
                rows = async_rows.get(key)
                n = preallocated.get(key, 0) if rows is None else len(rows)
                s_end = s_base + n
                arr = self.array(key)
                arr.resize((s_end, *arr.shape[1:]))
                if rows is not None and n:
                    arr[s_base:s_end] = rows
                ts = self.timestamps_array(key)
                ts.resize((s_end,))
                if n:
                    ts[s_base:s_end] = async_times[key]
                ends = self._array(f"{L.STREAM_ENDS}/{key}")
                ends.resize((index + 1,))
                ends[index] = s_end
                new_stream_ends[key] = s_end
            meta_group = self.group[L.META]
            meta_group.attrs["episodes"] = [*self._episodes, meta]
            ends_arr = self._array(L.EPISODE_ENDS)
            ends_arr.resize((index + 1,))
            ends_arr[index] = end  # the commit
        except BaseException as exc:
            if is_disk_full(exc):
                raise StoreFullError(
                    f"disk full while committing episode {index} to {self.root}: the "
                    f"{index} committed episode(s) are intact; this episode was not saved"
                ) from exc
            raise
        self._ends = np.append(self._ends, end)
        self._episodes.append(meta)
        for key, value in new_stream_ends.items():
            self._stream_ends[key] = np.append(self._stream_ends[key], value)
        return index

    def truncate_to_committed(self) -> RepairReport:
        """Cut every array back to the last commit and remove partial files; report it."""
        self.require_writable("truncate_to_committed")
        report = RepairReport()
        n = self.n_episodes
        ends_arr = self._array(L.EPISODE_ENDS)
        if ends_arr.shape[0] != n:
            ends_arr.resize((n,))
        episodes = self._attr_episodes()
        if len(episodes) != n:
            report.episodes_dropped = max(0, len(episodes) - n)
            self.group[L.META].attrs["episodes"] = episodes[:n]
        for key in self.array_keys():
            if key in self.async_streams:
                ends = self._array(f"{L.STREAM_ENDS}/{key}")
                if ends.shape[0] != n:
                    ends.resize((n,))
                keep = int(self._stream_ends[key][-1]) if n else 0
            else:
                keep = self.n_steps
            for arr in (self.array(key), self.timestamps_array(key)):
                extra = arr.shape[0] - keep
                if extra > 0:
                    old_rows = arr.shape[0]
                    written = self._rows_on_disk(arr, keep, old_rows)
                    arr.resize((keep, *arr.shape[1:]))
                    self._prune_chunk_dirs(arr, keep, old_rows)
                    if arr.path.startswith(L.DATA) and written:
                        report.rows_dropped[key] = written
        main = [k for k in self.array_keys() if k not in self.async_streams]
        report.steps_dropped = max((report.rows_dropped.get(k, 0) for k in main), default=0)
        for partial in self.root.rglob("*.partial"):
            partial.unlink(missing_ok=True)
            report.partial_files_removed += 1
        return report

    def _rows_on_disk(self, arr: zarr.Array, keep: int, old_rows: int) -> int:
        """Rows past ``keep`` that were really written (image arrays grow ahead of writes)."""
        rows_per_chunk = int(arr.chunks[0])
        if rows_per_chunk != 1:
            return old_rows - keep
        base = self.root / arr.path / "c"
        return sum((base / str(i)).exists() for i in range(keep, old_rows))

    def _prune_chunk_dirs(self, arr: zarr.Array, keep: int, old_rows: int) -> None:
        """Remove the chunk directories zarr leaves behind (empty) when an array shrinks."""
        rows_per_chunk = int(arr.chunks[0])
        first = -(-keep // rows_per_chunk)
        last = -(-old_rows // rows_per_chunk)
        base = self.root / arr.path / "c"
        for i in range(first, last):
            shutil.rmtree(base / str(i), ignore_errors=True)

    def _repair(self) -> None:
        report = self.truncate_to_committed()
        self.repair_report = report
        if report.repaired:
            LOG.warning("%s: repaired after an interrupted write: %s", self.root, report.describe())

    # ---- helpers -------------------------------------------------------------------------------
    def _attr_episodes(self) -> list[dict[str, Any]]:
        raw = self.group[L.META].attrs.get("episodes") or []
        return [dict(e) for e in cast("list[dict[str, Any]]", raw)]

    def _array(self, path: str) -> zarr.Array:
        """Array handle; cached while this store writes (its resizes keep the handle current).

        Writers write every chunk, even one equal to the fill value, so a missing chunk file
        of a committed row is always corruption, never "all zeros".
        """
        cached = self._arrays.get(path)
        if cached is not None:
            return cached
        node = self.group[path]
        assert isinstance(node, zarr.Array)
        if self.mode == "a":
            node = node.with_config({"write_empty_chunks": True})
            self._arrays[path] = node
        return node

    def _main_lengths(self) -> dict[str, int]:
        return {
            k: min(self.array(k).shape[0], self.timestamps_array(k).shape[0])
            for k in self.array_keys()
            if k not in self.async_streams
        }

    def _check_key(self, key: str) -> None:
        if key not in self.features or not L.is_stored_array(self.features[key]):
            raise SpecError(f"{self.root}: no stored feature {key!r}; valid: {self.array_keys()}")

    def _check_index(self, index: int) -> int:
        n = self.n_episodes
        if not -n <= index < n:
            raise IndexError(f"{self.root} has {n} episode(s); episode {index} does not exist")
        return index % n

    def nbytes_stored(self) -> int:
        """Bytes on disk under the store directory."""
        return disk_usage(self.root)

    def __repr__(self) -> str:
        return (
            f"EpisodeStore({str(self.root)!r}, mode={self.mode!r}, episodes={self.n_episodes}, "
            f"steps={self.n_steps})"
        )


__all__ = ["EPISODE_FIELDS", "EpisodeStore", "RepairReport"]
