"""Robot-side chunk execution: a timed action stream from chunks that arrive late.

Why: a policy answers with a chunk of future actions after some latency (a network hop, a GPU
queue, a 150 ms VLA). Waiting for each chunk before moving ("naive") stalls the robot every
chunk; executing stale chunks makes it jerk at every boundary. The executor works in control
ticks (tick ``k`` executes at ``t0 + k * period``) and:

* stamps every action of a chunk with the tick it is meant for: chunk step ``j`` of a chunk
  computed from the observation of tick ``r`` belongs to tick ``r + j``;
* asks for the next chunk early enough that it arrives before the current one runs out, using
  the measured latency (``rtc`` and ``ensemble`` modes; asynchronous inference);
* drops actions whose tick has passed by the time their chunk arrives;
* joins chunks real-time-chunking style (``rtc``): the actions that will execute while the next
  chunk is computed are sent with the request as a committed prefix, which diffusion and flow
  policies hold fixed while denoising the rest, so the new chunk continues the motion; or
  averages overlapping chunks with exponential weights (``ensemble``, as in ACT).

It is clock-free: callers pass ticks. :mod:`robot_learning.serving.runners` drives it in
real time with a background request thread, or in simulated time with an injected latency.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

ExecutionMode = Literal["rtc", "ensemble", "naive"]
EXECUTION_MODES: tuple[str, ...] = get_args(ExecutionMode)


@dataclass
class ExecutorConfig:
    """How chunks are requested and joined; ``period_s`` is the control period."""

    period_s: float
    chunk_len: int
    n_action_steps: int
    mode: ExecutionMode = "rtc"
    ensemble_decay: float = 0.01  # ACT's m: weight exp(-m * i), i = 0 for the oldest chunk
    latency_window: int = 20  # recent latencies kept for the estimate
    initial_latency_s: float = 0.0  # estimate before the first measured round trip

    def __post_init__(self) -> None:
        if self.mode not in EXECUTION_MODES:
            raise ValueError(f"unknown execution mode {self.mode!r}; valid: {EXECUTION_MODES}")
        if self.period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")
        if not 1 <= self.n_action_steps <= self.chunk_len:
            raise ValueError(
                f"n_action_steps must be in [1, chunk_len={self.chunk_len}], "
                f"got {self.n_action_steps}"
            )


@dataclass(frozen=True)
class TimedAction:
    """An action and the tick it executes at; ``chunk`` numbers the chunk it came from."""

    tick: int
    value: np.ndarray
    chunk: int


@dataclass
class ExecutorStats:
    """Counts over an episode: stalls after motion began, dropped late actions, chunks used."""

    chunks: int = 0
    requests: int = 0
    stalls: int = 0
    dropped: int = 0
    latencies_s: list[float] = field(default_factory=list)


class ChunkExecutor:
    """Turns late-arriving chunks into one action per tick; see the module docstring."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self._latencies: deque[float] = deque(maxlen=config.latency_window)
        self.reset()

    def reset(self) -> None:
        """Start an episode: no chunk, nothing in flight, fresh counts."""
        self._plan: dict[int, TimedAction] = {}
        self._sums: dict[int, tuple[np.ndarray, float]] = {}
        self._ensemble_counts: dict[int, int] = {}
        self._current_obs_tick: int | None = None
        self._inflight: int | None = None  # obs tick of the request in flight
        self._inflight_executed: int | None = None  # ticks acted on since that request
        self._started = False
        self._chunk_id = 0
        self.stats = ExecutorStats()

    # ---- requests ------------------------------------------------------------------------------
    def latency_ticks(self) -> int:
        """Ticks a request is expected to take: the worst of the recent round trips."""
        latency = max(self._latencies, default=self.config.initial_latency_s)
        return math.ceil(latency / self.config.period_s - 1e-9)

    @property
    def in_flight(self) -> bool:
        return self._inflight is not None

    def should_request(self, tick: int) -> bool:
        """Whether to send a request with the observation of ``tick`` now."""
        if self._inflight is not None:
            return False
        if self._current_obs_tick is None:
            return True
        age = tick - self._current_obs_tick
        cfg = self.config
        if cfg.mode == "naive":
            return age >= cfg.n_action_steps
        if cfg.mode == "ensemble":
            return True
        return age >= max(cfg.n_action_steps - self.latency_ticks(), 1)

    def committed_prefix(self, tick: int) -> np.ndarray | None:
        """Actions that will execute from ``tick`` until the requested chunk arrives (rtc)."""
        if self.config.mode != "rtc":
            return None
        steps = min(self.latency_ticks(), self.config.chunk_len)
        values = [self._plan[k].value for k in range(tick, tick + steps) if k in self._plan]
        if not values:
            return None
        return np.stack(values).astype(np.float32)

    def on_request(self, tick: int) -> None:
        """Record that a request with the observation of ``tick`` was sent."""
        self._inflight = tick
        self._inflight_executed = 0
        self.stats.requests += 1

    def on_failure(self) -> None:
        """The request in flight failed (server down): the next tick may ask again."""
        self._inflight = None
        self._inflight_executed = None

    def clear_plan(self) -> None:
        """Forget every planned action (the server is lost): the caller holds until a new
        chunk arrives, and the next tick may request one."""
        self._plan.clear()
        self._sums.clear()
        self._ensemble_counts.clear()
        self._current_obs_tick = None

    # ---- replies -------------------------------------------------------------------------------
    def on_chunk(self, chunk: np.ndarray, obs_tick: int, now_tick: int, latency_s: float) -> None:
        """Integrate a chunk computed from the observation of ``obs_tick``, arriving at
        ``now_tick`` (it is usable from this tick on; earlier steps are dropped)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[0] != self.config.chunk_len:
            raise ValueError(
                f"chunk has shape {chunk.shape}, expected ({self.config.chunk_len}, A)"
            )
        if self._inflight == obs_tick:
            self._inflight = None
        else:
            self._inflight_executed = None  # not the request in flight: no shift is known
        self._latencies.append(latency_s)
        self.stats.latencies_s.append(latency_s)
        self._chunk_id += 1
        self.stats.chunks += 1
        # ticks since the request on which the robot held instead of acting: the chunk's plan
        # has not started for them (with tcp-delta actions, skipping steps would offset the
        # arm for good), so its steps are shifted by that many ticks
        if self._inflight_executed is not None:
            obs_tick += max(0, now_tick - obs_tick - self._inflight_executed)
        self._inflight_executed = None
        first = max(now_tick, obs_tick)
        self.stats.dropped += first - obs_tick
        self._current_obs_tick = obs_tick
        limit = self.config.n_action_steps if self.config.mode == "naive" else chunk.shape[0]
        for j in range(first - obs_tick, limit):
            tick = obs_tick + j
            if self.config.mode == "ensemble":
                self._accumulate(tick, chunk[j])
            else:
                self._plan[tick] = TimedAction(tick, chunk[j], self._chunk_id)
        if self.config.mode != "ensemble":  # a newer chunk replaces everything after it
            for tick in [k for k in self._plan if k >= obs_tick + limit]:
                del self._plan[tick]

    def _accumulate(self, tick: int, value: np.ndarray) -> None:
        i = self._ensemble_counts.get(tick, 0)  # i-th prediction for this tick (0 = oldest)
        weight = math.exp(-self.config.ensemble_decay * i)
        total, wsum = self._sums.get(tick, (np.zeros_like(value), 0.0))
        self._sums[tick] = (total + weight * value, wsum + weight)
        self._ensemble_counts[tick] = i + 1
        self._plan[tick] = TimedAction(
            tick, (self._sums[tick][0] / self._sums[tick][1]).astype(np.float32), self._chunk_id
        )

    # ---- execution -----------------------------------------------------------------------------
    def has_action(self, tick: int) -> bool:
        """Whether an action is planned for ``tick`` (nothing is consumed)."""
        return tick in self._plan

    def action_for(self, tick: int) -> TimedAction | None:
        """The action stamped for ``tick`` (None: nothing to execute, the caller holds)."""
        for old in [k for k in self._plan if k < tick]:
            del self._plan[old]
        for old in [k for k in self._sums if k < tick]:
            del self._sums[old]
            self._ensemble_counts.pop(old, None)
        action = self._plan.pop(tick, None)
        if action is None:
            if self._started:
                self.stats.stalls += 1
            return None
        self._started = True
        if self._inflight_executed is not None:
            self._inflight_executed += 1
        return action


def stack_prefixes(prefixes: list[np.ndarray | None], action_dim: int) -> np.ndarray | None:
    """Per-robot committed prefixes ``[P_i, A]`` as one ``[B, max P, A]`` batch, NaN-padded;
    None when no robot has one (the policy then samples freely)."""
    longest = max((len(p) for p in prefixes if p is not None), default=0)
    if longest == 0:
        return None
    out = np.full((len(prefixes), longest, action_dim), np.nan, dtype=np.float32)
    for row, prefix in enumerate(prefixes):
        if prefix is not None:
            out[row, : len(prefix)] = prefix
    return out
