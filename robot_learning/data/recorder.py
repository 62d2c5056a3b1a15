"""``StreamRecorder``: many producer threads (cameras, joint state, commands) -> one episode.

Why: sensors run at their own rates on their own threads (3 cameras at 30 Hz, joints at 500 Hz),
but an :class:`~robot_learning.data.writer.EpisodeWriter` is not thread-safe. Producers hand
samples to a bounded queue; one consumer thread owns the writer. A producer never waits longer
than it may (its own sample period): if the queue is full for that long, the sample is counted
as dropped instead of silently stalling the sensor thread and skewing its clock.

Per stream the recorder counts samples submitted, recorded and dropped, and measures latency
from capture to on disk for image frames (when the writer's encode-and-write task finishes) and
from capture to hand-over for low-dim samples (those reach disk at commit, by design).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_learning.data.writer import EpisodeWriter

LOG = logging.getLogger(__name__)
STEP = "<step>"  # queue tag of a control-timeline step


@dataclass
class StreamStats:
    """Counters of one stream (or of the control timeline, key ``"<step>"``)."""

    key: str
    submitted: int = 0
    recorded: int = 0  # handed to the writer
    dropped: int = 0  # producer could not hand it over within its deadline
    on_disk: int = 0  # image frames whose write finished
    latency_s: list[float] = field(default_factory=list)  # capture -> disk (images) / hand-over

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q) * 1e3) if self.latency_s else float("nan")


class StreamRecorder:
    """Feeds ``writer`` from any number of producer threads; call :meth:`start`, then
    :meth:`submit` / :meth:`submit_step` from producers, then :meth:`stop` before commit.

    ``clock`` must be the clock the producers stamp ``t_capture`` with (latency = clock() -
    t_capture). ``max_queue`` bounds the samples in flight between producers and the consumer.
    """

    def __init__(
        self,
        writer: EpisodeWriter,
        *,
        max_queue: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self._queue: queue.Queue[tuple[str, Any, float] | None] = queue.Queue(maxsize=max_queue)
        self._stats: dict[str, StreamStats] = {}
        self._stats_lock = threading.Lock()
        self._consumer: threading.Thread | None = None
        self._error: BaseException | None = None
        self.writer_s = 0.0  # time the consumer spent inside writer calls (incl. backpressure)
        self.writer_call_max_s = 0.0
        self._images = {
            k for k, spec in writer.store.features.items() if spec.kind in ("rgb", "depth")
        }

    # ---- producers -----------------------------------------------------------------------------
    def submit(self, key: str, value: Any, t_capture: float, timeout_s: float) -> bool:
        """Hand one async-stream sample over; False (and counted as dropped) if not in time."""
        return self._put(key, (key, value, t_capture), timeout_s)

    def submit_step(self, values: Mapping[str, Any], t_capture: float, timeout_s: float) -> bool:
        """Hand one control-timeline step over (every control feature of the store)."""
        return self._put(STEP, (STEP, dict(values), t_capture), timeout_s)

    def _put(self, key: str, item: tuple[str, Any, float], timeout_s: float) -> bool:
        stats = self.stats_for(key)
        with self._stats_lock:
            stats.submitted += 1
        if self._error is not None:
            raise RuntimeError("the recorder's consumer failed") from self._error
        try:
            self._queue.put(item, timeout=max(timeout_s, 0.0))
        except queue.Full:
            with self._stats_lock:
                stats.dropped += 1
            return False
        return True

    # ---- consumer ------------------------------------------------------------------------------
    def start(self) -> StreamRecorder:
        self._consumer = threading.Thread(target=self._consume, name="stream-recorder", daemon=True)
        self._consumer.start()
        return self

    def stop(self) -> None:
        """Record everything queued, wait until every frame is on disk, re-raise any failure."""
        if self._consumer is not None:
            self._queue.put(None)
            self._consumer.join()
            self._consumer = None
        if self._error is not None:
            raise self._error
        self.writer.flush()

    def _consume(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, value, t_capture = item
            t0 = self.clock()
            try:
                future = self._record(key, value, t_capture)
            except BaseException as exc:  # surfaced to producers and stop()
                LOG.error("recording %s failed: %s", key, exc)
                self._error = exc
                return
            stats = self.stats_for(key)
            now = self.clock()
            self.writer_s += now - t0
            self.writer_call_max_s = max(self.writer_call_max_s, now - t0)
            with self._stats_lock:
                stats.recorded += 1
                if future is None:
                    stats.latency_s.append(now - t_capture)
            if future is not None:
                future.add_done_callback(self._on_disk_callback(stats, t_capture))

    def _record(self, key: str, value: Any, t_capture: float) -> Future[None] | None:
        """Give one item to the writer; the frame's write task when it streams an image."""
        writer = self.writer
        if key == STEP:
            writer.add_step(value, t_capture)
            return None
        return writer.add_sample(key, value, t_capture)

    def _on_disk_callback(
        self, stats: StreamStats, t_capture: float
    ) -> Callable[[Future[None]], None]:
        def done(future: Future[None]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            latency = self.clock() - t_capture
            with self._stats_lock:
                stats.on_disk += 1
                stats.latency_s.append(latency)

        return done

    # ---- results -------------------------------------------------------------------------------
    def stats_for(self, key: str) -> StreamStats:
        with self._stats_lock:
            if key not in self._stats:
                self._stats[key] = StreamStats(key)
            return self._stats[key]

    @property
    def stats(self) -> dict[str, StreamStats]:
        with self._stats_lock:
            return dict(self._stats)

    @property
    def queued(self) -> int:
        return self._queue.qsize()


__all__ = ["STEP", "StreamRecorder", "StreamStats"]
