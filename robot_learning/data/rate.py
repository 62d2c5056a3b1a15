"""``RateTimer``: a fixed-rate loop timer that reports what it really achieved.

Why: a recording loop that silently falls behind and still stamps frames at the nominal rate
produces datasets whose time axis is fiction. This timer sleeps to absolute tick deadlines (no
drift from accumulated sleep error), and when a tick overruns it does not burst to catch up: it
counts the overrun, re-anchors the schedule at "now" and lets the achieved rate show it.
Timestamps written to a dataset always come from the sensor/executor clock, never from
``tick * period``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateStats:
    """A snapshot of a :class:`RateTimer` (cheap to copy to a status thread)."""

    target_hz: float  # 0: free-running
    ticks: int
    overruns: int  # ticks whose work ran past their deadline
    max_late_s: float  # worst lateness past a deadline
    achieved_hz: float  # ticks / elapsed since start
    recent_hz: float  # over the last ~second of ticks

    def to_json(self) -> dict[str, float | int]:
        return {
            "target_hz": self.target_hz,
            "ticks": self.ticks,
            "overruns": self.overruns,
            "max_late_ms": round(self.max_late_s * 1e3, 3),
            "loop_rate_hz": round(self.achieved_hz, 3),
        }


class RateTimer:
    """Call :meth:`start` once, then :meth:`sleep` at the end of every tick.

    ``hz == 0`` runs free (no sleeping; still measures the rate). ``clock``/``sleep`` are
    injectable so tests can drive it with a fake clock.
    """

    def __init__(
        self,
        hz: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window: int = 64,
    ) -> None:
        if hz < 0 or hz != hz:
            raise ValueError(f"rate must be >= 0 Hz (0 = free-running), got {hz}")
        self.hz = float(hz)
        self.period = 1.0 / hz if hz > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._start = 0.0
        self._deadline = 0.0
        self._ticks = 0
        self._overruns = 0
        self._max_late = 0.0
        self._recent: deque[float] = deque(maxlen=window)
        self._started = False

    def start(self) -> None:
        """(Re)start the schedule now; the first deadline is one period away."""
        now = self._clock()
        self._start = now
        self._deadline = now + self.period
        self._ticks = 0
        self._overruns = 0
        self._max_late = 0.0
        self._recent.clear()
        self._recent.append(now)
        self._started = True

    def sleep(self) -> bool:
        """End a tick: sleep to its deadline. Returns False when the tick overran it."""
        if not self._started:
            self.start()
        now = self._clock()
        on_time = True
        if self.period > 0:
            late = now - self._deadline
            if late > 0:
                on_time = False
                self._overruns += 1
                self._max_late = max(self._max_late, late)
                self._deadline = now + self.period  # re-anchor: never burst to catch up
            else:
                self._sleep(-late)
                now = self._clock()
                self._deadline += self.period
        self._ticks += 1
        self._recent.append(now)
        return on_time

    @property
    def ticks(self) -> int:
        return self._ticks

    @property
    def overruns(self) -> int:
        return self._overruns

    def stats(self) -> RateStats:
        now = self._clock()
        elapsed = now - self._start if self._started else 0.0
        achieved = self._ticks / elapsed if elapsed > 0 else 0.0
        recent = 0.0
        if len(self._recent) >= 2:
            span = self._recent[-1] - self._recent[0]
            recent = (len(self._recent) - 1) / span if span > 0 else 0.0
        return RateStats(
            target_hz=self.hz,
            ticks=self._ticks,
            overruns=self._overruns,
            max_late_s=self._max_late,
            achieved_hz=achieved,
            recent_hz=recent,
        )


__all__ = ["RateStats", "RateTimer"]
