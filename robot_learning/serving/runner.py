"""Real-time driver of a :class:`ChunkExecutor`: requests on a thread, one action per tick.

Why: the control loop must never wait for the network. Each tick the loop hands over the newest
observation window; the runner sends a request in the background when the executor asks for
one, delivers replies as they arrive, and returns the action stamped for this tick, or None
when there is none, which the safety layer turns into a hold in the same tick.

When the server is lost (a request fails, the connection closes, or a request is out for longer
than ``server_timeout_s``) the runner drops the rest of the plan at once: actions computed
before the loss are not executed open-loop. Requests resume on later ticks (the client's
backoff paces reconnects) and motion continues from the first new chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_learning.serving.executor import ChunkExecutor, TimedAction

LOG = logging.getLogger(__name__)

InferFn = Callable[[Mapping[str, Any], np.ndarray | None], np.ndarray]  # (obs window, prefix)
# the observation window, or a function building it: only called when a request is sent, since
# stacking camera frames every tick for a request every few ticks costs the loop for nothing
WindowSource = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


@dataclass
class _Request:
    obs_tick: int
    sent_s: float
    future: Future[np.ndarray]


class AsyncChunkRunner:
    """Runs ``infer`` off the control loop and feeds its chunks to ``executor``."""

    def __init__(
        self,
        executor: ChunkExecutor,
        infer: InferFn,
        *,
        server_timeout_s: float = 1.0,
        connected: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executor = executor
        self.infer = infer
        self.server_timeout_s = server_timeout_s
        self.connected = connected
        self.clock = clock
        self.failures = 0
        self.server_lost_events = 0
        self._server_ok = True
        self._request: _Request | None = None
        self._staged: tuple[int, float, WindowSource, np.ndarray | None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-request")
        self._lock = threading.Lock()

    @property
    def server_ok(self) -> bool:
        """False from the moment the server is lost until a chunk arrives again."""
        return self._server_ok

    def step(
        self, tick: int, obs_window: WindowSource, *, defer_request: bool = False
    ) -> TimedAction | None:
        """Deliver what arrived, request if due, and return the action for ``tick``.

        With ``defer_request`` a due request is recorded (its prefix and tick are fixed now) but
        only sent by :meth:`dispatch`: encoding an observation window with camera images takes
        the interpreter for a millisecond or more, which a control loop would rather spend
        sending this tick's command first.
        """
        with self._lock:
            self._poll_and_request(tick, obs_window, defer_request)
            return self.executor.action_for(tick)

    def dispatch(self) -> None:
        """Send the request that :meth:`step` deferred, if any."""
        with self._lock:
            self._dispatch()

    def _dispatch(self) -> None:
        staged = self._staged
        if staged is None:
            return
        self._staged = None
        obs_tick, sent_s, obs_window, prefix = staged
        window = obs_window() if callable(obs_window) else obs_window
        self._request = _Request(obs_tick, sent_s, self._pool.submit(self.infer, window, prefix))

    def ready(self, tick: int, obs_window: WindowSource) -> bool:
        """Like :meth:`step` (deliver, request if due) but only say whether ``tick`` has an
        action, leaving it to be executed: waiting for a first chunk must not use it up, as a
        skipped tcp delta would offset the arm for the rest of the episode."""
        with self._lock:
            self._poll_and_request(tick, obs_window)
            return self.executor.has_action(tick)

    def _poll_and_request(self, tick: int, obs_window: WindowSource, defer: bool = False) -> None:
        self._dispatch()  # a request deferred by a caller that never dispatched goes out now
        self._poll(tick)
        if self._request is None and self.executor.should_request(tick):
            prefix = self.executor.committed_prefix(tick) if self._server_ok else None
            self.executor.on_request(tick)
            self._staged = (tick, self.clock(), obs_window, prefix)
            if not defer:
                self._dispatch()

    def _poll(self, tick: int) -> None:
        request = self._request
        lost_link = self.connected is not None and not self.connected()
        if request is None:
            if lost_link:
                self._lose("connection closed")
            return
        if request.future.done():
            self._request = None
            try:
                chunk = request.future.result()
            except Exception as exc:
                self.failures += 1
                self.executor.on_failure()
                self._lose(f"request failed: {exc}")
                return
            latency = self.clock() - request.sent_s
            self.executor.on_chunk(chunk, request.obs_tick, tick, latency)
            if not self._server_ok:
                LOG.info("policy server answering again; resuming motion")
            self._server_ok = True
            return
        if lost_link or self.clock() - request.sent_s > self.server_timeout_s:
            # the future keeps running; its late result is dropped when it completes
            self._request = None
            self.executor.on_failure()
            self._lose("connection closed" if lost_link else "request timed out")

    def _lose(self, why: str) -> None:
        if self._server_ok:
            self.server_lost_events += 1
            LOG.warning("policy server lost (%s): holding until it answers again", why)
        self._server_ok = False
        self.executor.clear_plan()

    def reset(self) -> None:
        """Start an episode: forget the plan and any request in flight (its late result is
        dropped), so a chunk computed for the previous episode never lands in this one."""
        with self._lock:
            self._request = None
            self._staged = None
            self.executor.reset()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> AsyncChunkRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
