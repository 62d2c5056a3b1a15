"""``EpisodeWriter``: records one episode into an :class:`EpisodeStore`, then commits it.

Why streaming: three 640x480 cameras for a minute are ~1.6 GB raw, too much to buffer. Image
frames are encoded and written by a small thread pool as they arrive (off the control thread;
imagecodecs releases the GIL), into rows past the committed end that readers ignore. Low-dim rows
and timestamps are small and buffered until :meth:`commit`, which writes them, the episode's
metadata and finally ``episode_ends``. :meth:`discard` (and a crash) leaves no trace: the rows
past the last commit are cut on the next open.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.data import layout as L
from robot_learning.data.errors import StoreError, StoreFullError, is_disk_full
from robot_learning.specs import SpecError, check_value

if TYPE_CHECKING:
    from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)
GROW_ROWS = 64  # image arrays grow by this many rows at a time (fewer metadata writes)


class EpisodeWriter:
    """Collects one episode's steps; nothing is visible to readers before :meth:`commit`.

    ``max_pending_frames`` bounds the image frames waiting to be encoded; when the pool falls
    behind, :meth:`add_step` waits (counted in :attr:`backpressure_waits`) rather than drop a
    frame that the control timeline needs.
    """

    def __init__(
        self,
        store: EpisodeStore,
        meta: Mapping[str, Any],
        workers: int = 2,
        max_pending_frames: int = 256,
    ) -> None:
        self.store = store
        self.meta = dict(meta)
        self.meta.setdefault("start_time", time.time())
        self.is_open = True
        self.n_steps = 0
        self.backpressure_waits = 0
        self._main = [k for k in store.array_keys() if k not in store.async_streams]
        self._images = {k for k in store.array_keys() if L.is_image(store.features[k])}
        self._rows: dict[str, list[np.ndarray]] = {k: [] for k in store.array_keys()}
        self._times: dict[str, list[float]] = {k: [] for k in store.array_keys()}
        self._written: dict[str, int] = {k: 0 for k in self._images}
        self._capacity: dict[str, int] = {}
        self._language: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="episode-writer")
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending_frames
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    # ---- recording -----------------------------------------------------------------------------
    def add_step(self, values: Mapping[str, Any], timestamps: Mapping[str, float] | float) -> None:
        """One control step: a value for every control-timeline feature (and language strings).

        ``timestamps`` is one sensor-clock time per feature, or one time for all of them.
        Extra keys that are not features of the store are rejected (they would be lost).
        """
        self._check_open("add_step")
        self._raise_pool_error()
        for key in values:
            if key in self.store.async_streams:
                raise SpecError(f"{key!r} is recorded at its own rate: use add_sample()")
        missing = [k for k in self._main if k not in values]
        if missing:
            raise SpecError(f"step is missing features {missing}; the store records {self._main}")
        unknown = [k for k in values if k not in self.store.features]
        if unknown:
            raise SpecError(
                f"step has features {unknown} the store does not record; valid: "
                f"{self.store.features.names()}"
            )
        for key in values:
            check_value(key, self.store.features[key], values[key], what="step")
        for key in self.store.language_keys:
            if key in values:
                self._language.setdefault(key, str(values[key]))
        for key in self._main:
            self._append(key, values[key], _time_of(timestamps, key))
        self.n_steps += 1

    def add_sample(self, key: str, value: Any, timestamp: float) -> Future[None] | None:
        """One sample of an async stream (recorded at its own rate, e.g. 500 Hz joints).

        Returns the image frame's write task (done once the frame is encoded and on disk), or
        None for low-dim samples, which reach the disk at commit.
        """
        self._check_open("add_sample")
        self._raise_pool_error()
        if key not in self.store.async_streams:
            raise SpecError(
                f"{key!r} is not an async stream of this store; async streams: "
                f"{list(self.store.async_streams)} (control-timeline features go in add_step)"
            )
        check_value(key, self.store.features[key], value, what="sample")
        return self._append(key, value, float(timestamp))

    def _append(self, key: str, value: Any, timestamp: float) -> Future[None] | None:
        spec = self.store.features[key]
        self._times[key].append(timestamp)
        if key not in self._images:
            self._rows[key].append(np.asarray(value, dtype=spec.dtype))
            return None
        frame = np.ascontiguousarray(value, dtype=spec.dtype)
        row = self._base(key) + self._written[key]
        self._ensure_capacity(key, row + 1)
        self._written[key] += 1
        while self._pending and self._pending[0].done():
            self._collect(self._pending.popleft())
        while len(self._pending) >= self._max_pending:
            self.backpressure_waits += 1
            self._collect(self._pending.popleft())
        future = self._pool.submit(self._write_frame, key, row, frame)
        self._pending.append(future)
        return future

    def _collect(self, future: Future[None]) -> None:
        try:
            future.result()
        except BaseException as exc:
            self._fail(exc)

    def _write_frame(self, key: str, row: int, frame: np.ndarray) -> None:
        try:
            self.store.array(key)[row] = frame
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
            raise

    def _base(self, key: str) -> int:
        if key in self.store.async_streams:
            return int(self.store.episode_range(-1, key)[1]) if self.store.n_episodes else 0
        return self.store.n_steps

    def _ensure_capacity(self, key: str, rows: int) -> None:
        arr = self.store.array(key)
        capacity = self._capacity.get(key, arr.shape[0])
        if rows <= capacity:
            return
        capacity = max(rows, capacity + GROW_ROWS)
        try:
            arr.resize((capacity, *arr.shape[1:]))
        except BaseException as exc:
            self._fail(exc)
        self._capacity[key] = capacity

    # ---- ending --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until every streamed frame is on disk (raises the first write error)."""
        while self._pending:
            self._collect(self._pending.popleft())
        self._raise_pool_error()

    def commit(self, success: bool | None = None, **meta: Any) -> int:
        """Make the episode visible: write low-dim rows, metadata, then ``episode_ends``.

        Returns the new episode's index. Raises ``StoreError`` for an empty episode.
        """
        self._check_open("commit")
        if self.n_steps == 0:
            raise StoreError("cannot commit an episode with no steps; discard() it instead")
        self.flush()
        index = self.store.n_episodes
        meta_out = {
            "index": index,
            "length": self.n_steps,
            "robot": self.store.robot,
            "fps": self.store.fps,
            "source": "",
            "operator": "",
            "task": "",
            "instruction": "",
            **self.meta,
            **meta,
            "success": None if success is None else bool(success),
            "end_time": time.time(),
        }
        if self._language:
            meta_out["language"] = dict(self._language)
            if not meta_out["instruction"]:
                meta_out["instruction"] = next(iter(self._language.values()))
        main_rows = {k: np.stack(self._rows[k]) for k in self._main if k not in self._images}
        main_times = {k: np.asarray(self._times[k], dtype=np.float64) for k in self._main}
        async_keys = self.store.async_streams
        async_rows = {
            k: np.stack(self._rows[k])
            for k in async_keys
            if k not in self._images and self._rows[k]
        }
        async_times = {k: np.asarray(self._times[k], dtype=np.float64) for k in async_keys}
        try:
            committed = self.store._append_commit(
                main_rows,
                main_times,
                async_rows,
                async_times,
                self.n_steps,
                meta_out,
                dict(self._written),
            )
        except BaseException:
            self._close()
            self._cleanup_after_failure()
            raise
        self._close()
        LOG.debug("committed episode %d (%d steps)", committed, self.n_steps)
        return committed

    def discard(self) -> None:
        """Drop the episode: its streamed frames are cut from the store, nothing else remains."""
        if not self.is_open:
            return
        with contextlib.suppress(StoreError):
            self.flush()
        self._close()
        self.store.truncate_to_committed()

    def _close(self) -> None:
        self.is_open = False
        self._pool.shutdown(wait=True)

    def _cleanup_after_failure(self) -> None:
        try:
            self.store.truncate_to_committed()
        except Exception as exc:  # the next open repairs what is left
            LOG.warning("could not trim the failed episode now (%s); the next open will", exc)

    def _check_open(self, what: str) -> None:
        if not self.is_open:
            raise StoreError(f"{what}(): this episode was already committed or discarded")

    def _raise_pool_error(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            self._fail(error)

    def _fail(self, exc: BaseException) -> None:
        if is_disk_full(exc):
            self._close()
            self._cleanup_after_failure()
            raise StoreFullError(
                f"disk full while recording episode {self.store.n_episodes} to "
                f"{self.store.root}: the {self.store.n_episodes} committed episode(s) are "
                "intact; this episode was not saved"
            ) from exc
        raise exc


def _time_of(timestamps: Mapping[str, float] | float, key: str) -> float:
    if isinstance(timestamps, Mapping):
        try:
            return float(timestamps[key])
        except KeyError:
            raise SpecError(f"step has no timestamp for feature {key!r}") from None
    return float(timestamps)
