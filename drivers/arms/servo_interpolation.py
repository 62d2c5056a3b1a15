"""Sparse timestamped joint waypoints -> a smooth, rate-limited servo stream.

Why: a policy emits joint targets at ~10 Hz, each with the time it should be reached, while a
servo interface (UR ``servoJ``, 125-500 Hz) needs a target every period; stepping straight to
each waypoint would jerk the arm. The plan is a curve in joint space from the current output
through the future waypoints:

* It starts at the current output state: a new waypoint re-plans from where the stream is *now*
  (position, and for ``cubic`` velocity too), so the stream stays continuous when plans change.
* ``linear`` interpolates piecewise linearly; ``cubic`` is a Hermite spline with Catmull-Rom
  tangents at interior waypoints and zero velocity at the last one.
* Past the last waypoint the stream holds it: nothing is ever extrapolated. Waypoints scheduled
  more than ``max_lead_s`` ahead are refused (usually a wrong clock or unit), late ones are
  reached as fast as the limits allow.
* Every output step is limited in velocity and acceleration per joint and clamped to the joint
  limits, whatever the waypoints ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

LOG = logging.getLogger(__name__)

Method = Literal["linear", "cubic"]
METHODS: tuple[str, ...] = ("linear", "cubic")


def check_joint_vector(values: Any, names: tuple[str, ...], what: str) -> np.ndarray:
    """``values`` as a float64 vector of one finite entry per joint, or a ValueError saying why."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} must be numeric, one value per joint {list(names)}: {exc}"
        ) from None
    if arr.shape != (len(names),):
        raise ValueError(
            f"{what} has shape {arr.shape}, expected ({len(names)},) for joints {list(names)}"
        )
    bad = [n for n, v in zip(names, arr) if not np.isfinite(v)]
    if bad:
        raise ValueError(f"{what} contains NaN or Inf for joints {bad}; nothing was sent")
    return arr


@dataclass(frozen=True)
class InterpolationConfig:
    """Interpolation method and limits; scalars apply to every joint."""

    method: Method = "cubic"
    max_velocity: float | tuple[float, ...] = 3.0  # rad/s (UR5e joints: 3.14)
    max_acceleration: float | tuple[float, ...] = 15.0  # rad/s²
    max_lead_s: float = 5.0  # refuse waypoints further ahead than this
    joint_low: float | tuple[float, ...] = -2.0 * np.pi
    joint_high: float | tuple[float, ...] = 2.0 * np.pi

    def validate(self, n_joints: int) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown interpolation {self.method!r}; valid: {', '.join(METHODS)}")
        for label in ("max_velocity", "max_acceleration"):
            arr = np.broadcast_to(np.asarray(getattr(self, label), dtype=np.float64), (n_joints,))
            if not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"{label} must be finite and > 0 for every joint, got {arr}")
        if not self.max_lead_s > 0:
            raise ValueError(f"max_lead_s must be > 0, got {self.max_lead_s}")
        low, high = self.limits(n_joints)
        if not np.all(low < high):
            raise ValueError(f"joint_low must be below joint_high, got {low} and {high}")

    def limits(self, n_joints: int) -> tuple[np.ndarray, np.ndarray]:
        low = np.broadcast_to(np.asarray(self.joint_low, dtype=np.float64), (n_joints,)).copy()
        high = np.broadcast_to(np.asarray(self.joint_high, dtype=np.float64), (n_joints,)).copy()
        return low, high


class ServoInterpolator:
    """Turns waypoints ``(positions, t)`` into one target per :meth:`step` call.

    Not thread-safe: a servo loop and a command thread share it under the caller's lock. All
    times are in one clock the caller chooses (seconds).
    """

    def __init__(
        self,
        joint_names: Sequence[str],
        initial: np.ndarray,
        t0: float,
        config: InterpolationConfig | None = None,
    ) -> None:
        self.joint_names = tuple(joint_names)
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"duplicate joint names in {list(self.joint_names)}")
        self.config = config or InterpolationConfig()
        n = len(self.joint_names)
        self.config.validate(n)
        self.low, self.high = self.config.limits(n)
        self.v_max = np.broadcast_to(np.asarray(self.config.max_velocity, float), (n,)).copy()
        self.a_max = np.broadcast_to(np.asarray(self.config.max_acceleration, float), (n,)).copy()
        self.reset(initial, t0)

    def reset(self, position: np.ndarray, t: float) -> None:
        """Drop every waypoint and hold ``position`` (e.g. the measured joints) at rest."""
        q = np.clip(self.check(position, "initial position"), self.low, self.high)
        self._q, self._v, self._t = q, np.zeros_like(q), float(t)
        self._times: list[float] = [self._t]
        self._points: list[np.ndarray] = [q.copy()]
        self._start_v = np.zeros_like(q)

    # ---- input ---------------------------------------------------------------------------------
    def check(self, positions: np.ndarray | Sequence[float], what: str = "waypoint") -> np.ndarray:
        return check_joint_vector(positions, self.joint_names, what)

    def by_name(self, targets: Mapping[str, float]) -> np.ndarray:
        """A waypoint given as ``{joint name: rad}``, reordered to :attr:`joint_names`."""
        unknown = sorted(set(targets) - set(self.joint_names))
        missing = [n for n in self.joint_names if n not in targets]
        if unknown or missing:
            raise ValueError(
                f"waypoint joint names do not match: unknown {unknown}, missing {missing}; "
                f"valid joints: {list(self.joint_names)}"
            )
        return self.check([float(targets[n]) for n in self.joint_names])

    def add_waypoint(
        self, positions: np.ndarray | Sequence[float] | Mapping[str, float], t: float, now: float
    ) -> np.ndarray:
        """Plan to reach ``positions`` at time ``t``; returns the waypoint clamped to the limits.

        Waypoints at or after ``t`` already queued are replaced (a newer plan wins). A waypoint
        whose time has passed is scheduled one step later than the newest output instead.
        """
        if isinstance(positions, Mapping):
            q = self.by_name(positions)
        else:
            q = self.check(positions)
        if not np.isfinite(t):
            raise ValueError(f"waypoint time must be finite, got {t}")
        if t - now > self.config.max_lead_s:
            raise ValueError(
                f"waypoint time {t:.3f} is {t - now:.3f} s ahead of now ({now:.3f}); the limit "
                f"is max_lead_s={self.config.max_lead_s} s (is t_exec in the arm's clock?)"
            )
        q = np.clip(q, self.low, self.high)
        start = max(self._t, now)
        if t <= start:
            LOG.debug("late waypoint (t=%.4f, now=%.4f): reaching it as fast as allowed", t, now)
            t = start + max(self.min_duration(self._q, q), 1e-3)
        # re-plan from the current output so the stream stays continuous
        keep = [(tt, p) for tt, p in zip(self._times[1:], self._points[1:]) if start < tt < t]
        self._times = [self._t] + [tt for tt, _ in keep] + [float(t)]
        self._points = [self._q.copy()] + [p for _, p in keep] + [q]
        self._start_v = self._v.copy() if self.config.method == "cubic" else np.zeros_like(q)
        return q

    # ---- output --------------------------------------------------------------------------------
    @property
    def position(self) -> np.ndarray:
        return self._q.copy()

    @property
    def velocity(self) -> np.ndarray:
        return self._v.copy()

    @property
    def last_waypoint_time(self) -> float:
        return self._times[-1]

    def is_dry(self, now: float) -> bool:
        """True when no waypoint lies ahead: the stream holds the last one."""
        return now >= self._times[-1]

    def sample(self, t: float) -> np.ndarray:
        """The planned (not rate-limited) position at time ``t``; the last waypoint after it."""
        times, points = self._times, self._points
        if t >= times[-1] or len(times) == 1:
            return points[-1].copy()
        if t <= times[0]:
            return points[0].copy()
        i = int(np.searchsorted(times, t, side="right")) - 1
        t0, t1 = times[i], times[i + 1]
        p0, p1 = points[i], points[i + 1]
        s = (t - t0) / (t1 - t0)
        if self.config.method == "linear":
            return p0 + s * (p1 - p0)
        h = t1 - t0
        m0, m1 = self._tangent(i), self._tangent(i + 1)
        s2, s3 = s * s, s * s * s
        return (
            (2 * s3 - 3 * s2 + 1) * p0
            + (s3 - 2 * s2 + s) * h * m0
            + (-2 * s3 + 3 * s2) * p1
            + (s3 - s2) * h * m1
        )

    def _tangent(self, i: int) -> np.ndarray:
        if i == 0:
            return self._start_v
        if i == len(self._times) - 1:
            return np.zeros_like(self._q)  # come to rest at the last waypoint
        dt = self._times[i + 1] - self._times[i - 1]
        return (self._points[i + 1] - self._points[i - 1]) / dt

    def step(self, now: float) -> np.ndarray:
        """Advance the output to ``now``: planned position, velocity/acceleration limited.

        While holding (no waypoint ahead) the approach speed is also capped by the stopping
        distance, so a target the limits could not follow is reached without overshoot.
        """
        dt = now - self._t
        if dt <= 0:
            return self._q.copy()
        goal = self.sample(now)
        error = goal - self._q
        v_want = error / dt
        if self.is_dry(now):
            v_stop = np.sqrt(2.0 * self.a_max * np.abs(error))
            v_want = np.sign(error) * np.minimum(np.abs(v_want), v_stop)
        v = np.clip(v_want, self._v - self.a_max * dt, self._v + self.a_max * dt)
        v = np.clip(v, -self.v_max, self.v_max)
        q = np.clip(self._q + v * dt, self.low, self.high)
        self._v = (q - self._q) / dt
        self._q, self._t = q, float(now)
        if len(self._times) > 1 and self._times[1] <= now:  # drop segments that are behind
            i = int(np.searchsorted(self._times, now, side="right")) - 1
            self._start_v = self._tangent(i)
            self._times, self._points = self._times[i:], self._points[i:]
        return q.copy()

    def resync(self, now: float) -> None:
        """Move the output clock to ``now`` without moving the output.

        For a servo loop that fell behind: re-plans from the current output to the waypoints
        still ahead (or, if all have passed, to the last one as fast as the limits allow), so
        no command has to cover the missed time in one step.
        """
        if now <= self._t:
            return
        ahead = [(t, p) for t, p in zip(self._times[1:], self._points[1:]) if t > now]
        last = self._points[-1]
        if not ahead and not np.array_equal(last, self._q):
            ahead = [(now + max(self.min_duration(self._q, last), 1e-3), last)]
        self._times = [float(now)] + [t for t, _ in ahead]
        self._points = [self._q.copy()] + [p for _, p in ahead]
        self._start_v = self._v.copy() if self.config.method == "cubic" else np.zeros_like(self._q)
        self._t = float(now)

    def min_duration(self, start: np.ndarray, end: np.ndarray) -> float:
        """Shortest rest-to-rest cubic move from ``start`` to ``end`` within the limits (s)."""
        d = np.abs(end - start)
        return float(np.max(np.maximum(1.5 * d / self.v_max, np.sqrt(6.0 * d / self.a_max))))


__all__ = ["METHODS", "InterpolationConfig", "Method", "ServoInterpolator", "check_joint_vector"]
