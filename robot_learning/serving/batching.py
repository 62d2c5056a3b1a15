"""Dynamic batching: one worker per policy stacks concurrent requests into one model call.

Why: a GPU (or a CPU's vector units) computes a batch of 8 chunks in little more than the time of
one, so robots sharing a server should share model calls. The worker takes the first queued
request, then gathers more for at most ``max_wait_ms`` (or until ``max_batch``), stacks them into
``[B, ...]`` arrays and runs ``predict_chunk`` in a thread, never on the event loop. It stops
waiting early once every recently active connection already has a request in the batch: a lone
robot is never delayed by the batching window, and requests that arrive while the model runs are
batched into the next call anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.serving.executor import stack_prefixes
from robot_learning.serving.metrics import ServerMetrics
from robot_learning.serving.validation import RequestError

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)
ACTIVE_WINDOW_S = 1.0  # a connection that sent a request this recently may send another soon


@dataclass(eq=False)
class PendingRequest:
    """One validated request waiting for its batch; ``future`` gets (actions, timing)."""

    conn_id: int
    obs: dict[str, Any]
    prefix: np.ndarray | None
    received: float  # perf_counter() when the message arrived
    future: asyncio.Future[tuple[np.ndarray, dict[str, float]]] = field(repr=False)
    enqueued: float = 0.0


class BatchWorker:
    """Owns one policy: its request queue, its inference thread and its batching loop."""

    def __init__(
        self,
        name: str,
        policy: Policy,
        metrics: ServerMetrics,
        *,
        max_batch: int,
        max_wait_ms: float,
        inject_delay_ms: float = 0.0,
    ) -> None:
        self.name = name
        self.policy = policy
        self.metrics = metrics
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self.inject_delay_s = max(0.0, float(inject_delay_ms)) / 1000.0
        self.queue: deque[PendingRequest] = deque()
        self.wakeup = asyncio.Event()
        self.last_seen: dict[int, float] = {}  # conn_id -> time of its latest request
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"policy-{name}")
        self.spec_items = list(policy.observation_spec.items())

    def submit(self, request: PendingRequest) -> None:
        request.enqueued = time.perf_counter()
        self.last_seen[request.conn_id] = request.enqueued
        self.queue.append(request)
        self.wakeup.set()

    def forget(self, conn_id: int) -> None:
        self.last_seen.pop(conn_id, None)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        while self.queue:
            request = self.queue.popleft()
            if not request.future.done():
                request.future.set_exception(
                    RequestError("internal", "the server is shutting down")
                )

    def _everyone_in(self, batch: list[PendingRequest], now: float) -> bool:
        waiting_for = {c for c, t in self.last_seen.items() if now - t < ACTIVE_WINDOW_S}
        return waiting_for <= {r.conn_id for r in batch}

    async def _collect(self) -> list[PendingRequest]:
        while not self.queue:
            self.wakeup.clear()
            await self.wakeup.wait()
        batch = [self.queue.popleft()]
        deadline = time.perf_counter() + self.max_wait_s
        while True:
            while len(batch) < self.max_batch and self.queue:
                batch.append(self.queue.popleft())
            now = time.perf_counter()
            if len(batch) >= self.max_batch or now >= deadline or self._everyone_in(batch, now):
                break
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), deadline - now)
            except TimeoutError:
                break
        return [r for r in batch if not r.future.done()]  # drop requests of closed connections

    def _stack(self, batch: list[PendingRequest]) -> tuple[dict[str, Any], np.ndarray | None]:
        obs: dict[str, Any] = {}
        for key, spec in self.spec_items:
            if spec.kind == "language":
                obs[key] = [r.obs[key] for r in batch]
            elif len(batch) == 1:  # a view: no copy of a lone robot's images
                obs[key] = batch[0].obs[key][None]
            else:
                obs[key] = np.stack([r.obs[key] for r in batch])
        return obs, stack_prefixes([r.prefix for r in batch], int(self.policy.action_dim))

    def _infer(self, obs: dict[str, Any], prefix: np.ndarray | None, size: int) -> np.ndarray:
        """Runs in the worker thread."""
        if self.inject_delay_s > 0:
            time.sleep(self.inject_delay_s)
        out = np.asarray(self.policy.predict_chunk(obs, prefix))
        want = (size, int(self.policy.chunk_len), int(self.policy.action_dim))
        if out.shape != want:
            raise RuntimeError(f"predict_chunk returned shape {out.shape}, expected {want}")
        return np.ascontiguousarray(out, dtype=np.float32)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            start = time.perf_counter()
            try:
                obs, prefix = self._stack(batch)
                actions = await loop.run_in_executor(
                    self.executor, self._infer, obs, prefix, len(batch)
                )
            except asyncio.CancelledError:
                for r in batch:
                    r.future.cancel()
                raise
            except Exception as exc:
                LOG.warning(
                    "policy %r failed on a batch of %d", self.name, len(batch), exc_info=True
                )
                error = RequestError(
                    "internal",
                    f"policy {self.name!r} failed on this batch of {len(batch)} requests: "
                    f"{type(exc).__name__}: {str(exc)[:300]}",
                )
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(error)
                continue
            infer_s = time.perf_counter() - start
            self.metrics.inference_seconds.observe(infer_s, self.name)
            self.metrics.batch_size.observe(len(batch), self.name)
            for i, r in enumerate(batch):
                if not r.future.done():
                    timing = {
                        "queue_ms": (start - r.enqueued) * 1e3,
                        "infer_ms": infer_s * 1e3,
                        "batch_size": len(batch),
                    }
                    r.future.set_result((actions[i], timing))
