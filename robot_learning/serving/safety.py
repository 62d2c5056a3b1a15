"""The safety layer: the last check between any policy and any arm.

Every command passes :meth:`SafetyLayer.filter` once per control tick, after the chunk executor
and before the driver (``policy -> chunk executor -> safety -> arm``). Each tick it either
*holds* (e-stop latched, no action available, NaN/Inf, a stale observation stream) or *clamps*
the command to the configured limits (joint position, velocity, acceleration, lead over the
measured joints, workspace box, tcp step and speed). It never raises for a bad action, only for
programming errors (a command of the wrong shape, a state missing what a rule needs), and every
output is finite.

Why hold and not skip: a position-controlled arm keeps tracking its last target, so "no command"
is not "stop". A hold re-sends the last target (joint mode) or a zero tcp delta (ee_delta mode),
with the gripper at its last value so a held object is not dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_learning.serving.safety_config import (
    EE_DELTA_NAMES,
    SAFETY_MODES,
    SafetyConfig,
    SafetyMode,
    sim_fk,
    sim_joint_ranges,
)
from robot_learning.specs import SpecError

LOG = logging.getLogger(__name__)

HOLD_RULES: tuple[str, ...] = ("estop", "no_action", "nan", "stale_obs")
CLAMP_RULES: tuple[str, ...] = (
    "joint_limit",
    "joint_velocity",
    "joint_acceleration",
    "max_step",
    "workspace",
    "tcp_step",
    "tcp_speed",
    "rot_step",
    "gripper_range",
)
RULES: tuple[str, ...] = HOLD_RULES + CLAMP_RULES
_BISECT_ITERATIONS = 20
_EPS = 1e-9


class HoldUnavailableError(RuntimeError):
    """No safe command can be formed: joint mode with no previous command and no measurement."""


@dataclass(frozen=True)
class Intervention:
    """One rule acting on one tick (or an e-stop being triggered or reset)."""

    time: float
    rule: str
    detail: str


@dataclass
class ArmState:
    """What the control loop knows this tick; ``time`` is the loop's monotonic clock (s).

    ``joint_pos`` is measured, in ``SafetyConfig.joint_names`` order. ``tcp_pos`` is the pose the
    arm applies tcp deltas to (the commanded pose where the arm integrates commands, as the sim
    does; else the measured one). ``obs_timestamps`` are per-stream sensor stamps on the same
    clock as ``time``. ``gripper_pos`` (measured) is used to hold the gripper when no command
    has been sent yet.
    """

    time: float
    joint_pos: np.ndarray | None = None
    tcp_pos: np.ndarray | None = None
    obs_timestamps: Mapping[str, float] | None = None
    gripper_pos: float | None = None

    @classmethod
    def from_joint_state(
        cls,
        time: float,
        joint_state: Any,
        joint_names: tuple[str, ...],
        *,
        stream: str = "joint_state",
        tcp_pos: np.ndarray | None = None,
        obs_timestamps: Mapping[str, float] | None = None,
        gripper_pos: float | None = None,
    ) -> ArmState:
        """State from a ``drivers.interfaces.JointState``, joints mapped by name (not index).

        Its stamp is recorded as stream ``stream`` beside ``obs_timestamps``.
        """
        names = tuple(joint_state.names)
        order = joint_names or names
        missing = [n for n in order if n not in names]
        if missing:
            raise ValueError(f"joint state lacks joints {missing}; it has {list(names)}")
        position = np.asarray(joint_state.position, dtype=np.float64)
        joints = np.array([position[names.index(n)] for n in order])
        stamps = {**(obs_timestamps or {}), stream: float(joint_state.timestamp)}
        return cls(time, joints, tcp_pos, stamps, gripper_pos)


class SafetyLayer:
    """Filters every command to an arm; see the module docstring and ``docs/safety.md``.

    ``fk`` maps joint positions to the tcp position (m); joint mode needs it for the workspace
    box and tcp step/speed rules. ``estop``/``reset_estop`` may be called from another thread.
    """

    def __init__(
        self, config: SafetyConfig, fk: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> None:
        config.validate()
        cartesian = [
            k
            for k in ("workspace_low", "max_tcp_step", "max_tcp_speed")
            if getattr(config, k) is not None
        ]
        if config.mode == "joint" and cartesian and fk is None:
            raise ValueError(
                f"joint mode with {cartesian} needs fk=<joint positions -> tcp position> "
                "(for the sim: robot_learning.serving.safety_config.sim_fk())"
            )
        if config.mode == "ee_delta" and fk is not None:
            raise ValueError("fk is used in joint mode only; this config is 'ee_delta'")
        self.config = config
        self.fk = fk
        self.counts: dict[str, int] = dict.fromkeys(RULES, 0)
        self.events: deque[Intervention] = deque(maxlen=int(config.max_events))
        self._period = float(config.control_period_s)
        self._gi = config.gripper_index
        self._dim: int | None = None
        self._motion_idx = np.zeros(0, dtype=np.intp)
        self._names: tuple[str, ...] = ()
        self._low: np.ndarray | None = None
        self._high: np.ndarray | None = None
        self._vmax: np.ndarray | None = None
        self._amax: np.ndarray | None = None
        self._box: tuple[np.ndarray, np.ndarray] | None = None
        if config.workspace_low is not None and config.workspace_high is not None:
            self._box = (np.asarray(config.workspace_low), np.asarray(config.workspace_high))
        if config.action_dim is not None:
            self._set_dim(config.action_dim)
        self._estop = threading.Event()
        self._estop_reason: str | None = None
        self._last_time = 0.0
        self._log_state: dict[str, tuple[float, int]] = {}
        self._prev: np.ndarray | None = None  # last sent command
        self._prev_vel: np.ndarray | None = None  # joint velocity of the last sent command
        self._prev_tcp: np.ndarray | None = None  # fk of the last sent joint command
        self._last_gripper: float | None = None

    # ---- public API ----------------------------------------------------------------------------
    @property
    def estopped(self) -> bool:
        return self._estop.is_set()

    @property
    def estop_reason(self) -> str | None:
        return self._estop_reason if self.estopped else None

    def estop(self, reason: str) -> None:
        """Latch the e-stop: every :meth:`filter` holds until :meth:`reset_estop`."""
        self._estop_reason = reason
        self._estop.set()
        self.events.append(Intervention(self._last_time, "estop", f"triggered: {reason}"))
        LOG.warning("safety e-stop latched: %s", reason)

    def reset_estop(self) -> None:
        """Release a latched e-stop (an explicit operator decision; logged)."""
        if not self.estopped:
            return
        LOG.warning("safety e-stop reset (was: %s)", self._estop_reason)
        self.events.append(Intervention(self._last_time, "estop", "reset"))
        self._estop.clear()
        self._estop_reason = None

    def reset(self) -> None:
        """New episode: forget the previous command and velocity; counters and e-stop stay."""
        self._prev = self._prev_vel = self._prev_tcp = None
        self._last_gripper = None

    def summary(self) -> dict[str, Any]:
        """Counts per rule, their total and the e-stop latch, JSON-ready."""
        return {
            "counts": dict(self.counts),
            "interventions": int(sum(self.counts.values())),
            "estopped": self.estopped,
            "estop_reason": self.estop_reason,
        }

    def filter(self, proposed: np.ndarray | None, state: ArmState) -> np.ndarray:
        """The command to send this tick; ``None`` means no action is available (hold now)."""
        if not np.isfinite(state.time):
            raise ValueError(f"ArmState.time must be finite, got {state.time}")
        if self._dim is None and self.config.mode == "joint" and state.joint_pos is not None:
            self._set_dim(int(np.size(state.joint_pos)) + self.config.n_gripper)
        cmd = None if proposed is None else self._as_command(proposed)
        self._check_state(state)
        t = float(state.time)
        self._last_time = t
        # the safe action is clamped against the measured state, so only a finite one allows it
        unmeasured = self._non_finite_state(state)
        safe_ok = not unmeasured
        if self.estopped:
            self._intervene(t, "estop", f"latched: {self._estop_reason}")
            return self._hold(state, allow_safe=False)
        if cmd is None:
            self._intervene(t, "no_action", "no action available (server timeout or chunk end)")
            return self._hold(state, allow_safe=safe_ok)
        bad = ~np.isfinite(cmd)
        if bad.any():
            names = [self._element_name(int(i)) for i in np.flatnonzero(bad)]
            self._intervene(t, "nan", f"non-finite command elements {names}: rejected")
            return self._hold(state, allow_safe=safe_ok)
        if unmeasured:
            self._intervene(t, "nan", f"non-finite measured {unmeasured}")
            return self._hold(state, allow_safe=False)
        stale = self._stale_streams(state)
        if stale:
            self._intervene(t, "stale_obs", "; ".join(stale))
            return self._hold(state)
        out = self._clamp(cmd, state)
        self._commit(out, state, hold=False)
        return out.copy()

    def hold_command(self, state: ArmState) -> np.ndarray:
        """The command that keeps the arm where it is commanded, gripper at its last value.

        Joint mode: the last sent targets, or the measured joints when none was sent since
        :meth:`reset`. ee_delta mode: a zero tcp delta.
        """
        dim = self._require_dim(state)
        out = np.zeros(dim)
        if self.config.mode == "joint":
            if self._prev is not None:
                out[self._motion_idx] = self._prev[self._motion_idx]
            elif state.joint_pos is not None and np.all(np.isfinite(state.joint_pos)):
                out[self._motion_idx] = state.joint_pos
            else:
                raise HoldUnavailableError(
                    "joint-mode hold needs ArmState.joint_pos (finite) when no command was sent "
                    "since reset(); stop the arm at the driver"
                )
        if self._gi is not None:
            out[self._gi] = self._gripper_hold_value(state)
        return out

    # ---- holds and bookkeeping -----------------------------------------------------------------
    def _hold(self, state: ArmState, allow_safe: bool = True) -> np.ndarray:
        safe = self.config.safe_action
        if allow_safe and safe is not None:
            cmd = np.asarray(safe, dtype=np.float64).copy()
            if self._gi is not None:
                cmd[self._gi] = self._gripper_hold_value(state)
            out = self._clamp(cmd, state)
            self._commit(out, state, hold=False)
        else:
            out = self.hold_command(state)
            self._commit(out, state, hold=True)
        return out.copy()

    def _gripper_hold_value(self, state: ArmState) -> float:
        if self._last_gripper is not None:
            return self._last_gripper
        if state.gripper_pos is not None and np.isfinite(state.gripper_pos):
            value = float(state.gripper_pos)
            rng = self.config.gripper_range
            return value if rng is None else float(np.clip(value, rng[0], rng[1]))
        if self.config.safe_action is not None and self._gi is not None:
            return float(self.config.safe_action[self._gi])
        return 0.0 if self.config.gripper_range is None else float(self.config.gripper_range[0])

    def _commit(self, out: np.ndarray, state: ArmState, *, hold: bool) -> None:
        if self.config.mode == "joint":
            joints = out[self._motion_idx]
            ref = self._reference(state)
            if hold or ref is None:
                self._prev_vel = np.zeros_like(joints)
            else:
                self._prev_vel = (joints - ref) / self._period
            if self.fk is not None:
                self._prev_tcp = np.asarray(self.fk(joints), dtype=np.float64).copy()
        self._prev = out.copy()
        if self._gi is not None:
            self._last_gripper = float(out[self._gi])

    def _intervene(self, t: float, rule: str, detail: str) -> None:
        self.counts[rule] += 1
        self.events.append(Intervention(t, rule, detail))
        last = self._log_state.get(rule)
        if last is not None and 0.0 <= t - last[0] < self.config.log_interval_s:
            self._log_state[rule] = (last[0], last[1] + 1)
            return
        suppressed = last[1] if last is not None else 0
        more = f" (+{suppressed} more since the last report)" if suppressed else ""
        level = logging.WARNING if rule in HOLD_RULES else logging.INFO
        action = "hold" if rule in HOLD_RULES else "clamped"
        LOG.log(level, "safety %s at t=%.3f s (%s): %s%s", rule, t, action, detail, more)
        self._log_state[rule] = (t, 0)

    # ---- validation ----------------------------------------------------------------------------
    def _set_dim(self, dim: int) -> None:
        cfg = self.config
        if self._gi is not None and self._gi >= dim:
            raise SpecError(f"gripper_index {self._gi} is outside a command of {dim} elements")
        self._dim = dim
        motion = [i for i in range(dim) if i != self._gi]
        self._motion_idx = np.array(motion, dtype=np.intp)
        if cfg.mode == "ee_delta":
            self._names = EE_DELTA_NAMES
            return
        n = len(motion)
        self._names = cfg.joint_names or tuple(f"joint{i}" for i in range(n))
        if cfg.joint_pos_low is not None and cfg.joint_pos_high is not None:
            self._low = np.asarray(cfg.joint_pos_low, dtype=np.float64)
            self._high = np.asarray(cfg.joint_pos_high, dtype=np.float64)
        if cfg.joint_vel_max is not None:
            self._vmax = np.broadcast_to(np.asarray(cfg.joint_vel_max, np.float64), (n,)).copy()
        if cfg.joint_acc_max is not None:
            self._amax = np.broadcast_to(np.asarray(cfg.joint_acc_max, np.float64), (n,)).copy()

    def _require_dim(self, state: ArmState) -> int:
        if self._dim is None:
            if state.joint_pos is None:
                raise HoldUnavailableError(
                    "the number of joints is unknown: give joint_names in the config or "
                    "ArmState.joint_pos"
                )
            self._set_dim(int(np.asarray(state.joint_pos).size) + self.config.n_gripper)
        assert self._dim is not None
        return self._dim

    def _element_name(self, i: int) -> str:
        if i == self._gi:
            return "gripper"
        k = int(np.searchsorted(self._motion_idx, i))
        return self._names[k] if k < len(self._names) else str(i)

    def _as_command(self, proposed: Any) -> np.ndarray:
        try:
            cmd = np.array(proposed, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"safety: command is not a numeric array: {exc}") from None
        if self._dim is None and cmd.ndim == 1 and cmd.size > self.config.n_gripper:
            self._set_dim(cmd.size)  # joint count not in the config: the first command fixes it
        if self._dim is None or cmd.shape != (self._dim,):
            names = [self._element_name(i) for i in range(self._dim or 0)]
            raise SpecError(
                f"safety: command has shape {cmd.shape}, expected ({self._dim},) for "
                f"{self.config.mode!r} mode: {names}"
            )
        return cmd

    def _check_state(self, state: ArmState) -> None:
        if state.joint_pos is not None:
            n = len(self._motion_idx) if self._dim is not None else None
            shape = np.shape(state.joint_pos)
            if self.config.mode == "joint" and n is not None and shape != (n,):
                raise SpecError(f"ArmState.joint_pos has shape {shape}, expected ({n},)")
        if state.tcp_pos is not None and np.shape(state.tcp_pos) != (3,):
            raise SpecError(f"ArmState.tcp_pos has shape {np.shape(state.tcp_pos)}, expected (3,)")

    def _stale_streams(self, state: ArmState) -> list[str]:
        stamps = state.obs_timestamps or {}
        stale: list[str] = []
        for stream, max_age in self.config.stale_obs_max_age_s.items():
            stamp = stamps.get(stream)
            if stamp is None or not np.isfinite(stamp):
                stale.append(f"stream {stream!r} has no timestamp")
            elif state.time - stamp > max_age:
                stale.append(f"stream {stream!r} is {state.time - stamp:.3f} s old > {max_age} s")
        return stale

    def _non_finite_state(self, state: ArmState) -> list[str]:
        bad = []
        for name in ("joint_pos", "tcp_pos"):
            value = getattr(state, name)
            if value is not None and not np.all(np.isfinite(value)):
                bad.append(name)
        return bad

    def _reference(self, state: ArmState) -> np.ndarray | None:
        """Where joint motion is measured from: the last sent targets, else the measured joints."""
        if self._prev is not None:
            return self._prev[self._motion_idx]
        if state.joint_pos is not None:
            return np.asarray(state.joint_pos, dtype=np.float64)
        return None

    def _require(self, value: np.ndarray | None, what: str, rule: str) -> np.ndarray:
        if value is None:
            raise ValueError(f"safety rule {rule!r} needs ArmState.{what}; pass it every tick")
        return np.asarray(value, dtype=np.float64)

    # ---- clamps --------------------------------------------------------------------------------
    def _clamp(self, cmd: np.ndarray, state: ArmState) -> np.ndarray:
        out = cmd.copy()
        t = float(state.time)
        rng = self.config.gripper_range
        if self._gi is not None and rng is not None:
            g = float(np.clip(out[self._gi], rng[0], rng[1]))
            if g != out[self._gi]:
                self._intervene(t, "gripper_range", f"gripper {out[self._gi]:.4g} -> {g:.4g}")
                out[self._gi] = g
        motion = out[self._motion_idx]
        if self.config.mode == "joint":
            out[self._motion_idx] = self._clamp_joints(motion, state, t)
        else:
            out[self._motion_idx] = self._clamp_ee(motion, state, t)
        return out

    def _note(self, t: float, rule: str, before: np.ndarray, after: np.ndarray) -> None:
        changed = np.flatnonzero(before != after)
        if changed.size:
            parts = [f"{self._names[i]} {before[i]:.4g}->{after[i]:.4g}" for i in changed[:6]]
            self._intervene(t, rule, ", ".join(parts))

    def _clamp_joints(self, q: np.ndarray, state: ArmState, t: float) -> np.ndarray:
        cfg, dt = self.config, self._period
        if self._low is not None and self._high is not None:
            clipped = np.clip(q, self._low, self._high)
            self._note(t, "joint_limit", q, clipped)
            q = clipped
        ref = self._reference(state)
        if self._vmax is not None:
            ref = self._require(ref, "joint_pos (first tick after reset)", "joint_velocity")
            v = (q - ref) / dt
            vc = np.clip(v, -self._vmax, self._vmax)
            clipped = np.where(vc != v, ref + vc * dt, q)
            self._note(t, "joint_velocity", q, clipped)
            q = clipped
        if self._amax is not None:
            ref = self._require(ref, "joint_pos (first tick after reset)", "joint_acceleration")
            v_prev = np.zeros_like(q) if self._prev_vel is None else self._prev_vel
            v = (q - ref) / dt
            va = np.clip(v, v_prev - self._amax * dt, v_prev + self._amax * dt)
            # slowing down toward the requested target is never refused: that would move the
            # arm further than asked
            va = np.clip(va, np.minimum(v, 0.0), np.maximum(v, 0.0))
            clipped = np.where(va != v, ref + va * dt, q)
            self._note(t, "joint_acceleration", q, clipped)
            q = clipped
        measured = None
        if cfg.max_joint_step is not None:
            measured = self._require(state.joint_pos, "joint_pos", "max_step")
            s = cfg.max_joint_step
            clipped = np.clip(q, measured - s, measured + s)
            self._note(t, "max_step", q, clipped)
            q = clipped
        if self.fk is not None:
            q = self._clamp_joints_cartesian(q, ref, measured, state, t)
        return q

    def _clamp_joints_cartesian(
        self,
        q: np.ndarray,
        ref: np.ndarray | None,
        measured: np.ndarray | None,
        state: ArmState,
        t: float,
    ) -> np.ndarray:
        """Workspace box and tcp step/speed through ``fk``: back off along ref -> q."""
        assert self.fk is not None
        cfg = self.config
        anchor = self._require(ref, "joint_pos (first tick after reset)", "workspace")
        fk = self.fk
        p_anchor = self._prev_tcp if self._prev is not None else None
        if p_anchor is None:
            p_anchor = np.asarray(fk(anchor), dtype=np.float64)
        step_limits = {
            "tcp_step": cfg.max_tcp_step,
            "tcp_speed": None if cfg.max_tcp_speed is None else cfg.max_tcp_speed * self._period,
        }
        anchor_excess = _box_excess(p_anchor, self._box)

        def violations(x: np.ndarray) -> list[str]:
            p = np.asarray(fk(x), dtype=np.float64)
            found = []
            if self._box is not None and _box_excess(p, self._box) > anchor_excess + _EPS:
                found.append("workspace")
            step = float(np.linalg.norm(p - p_anchor))
            found += [r for r, lim in step_limits.items() if lim is not None and step > lim + _EPS]
            lead = 0.0 if measured is None else float(np.max(np.abs(x - measured)))
            if cfg.max_joint_step is not None and lead > cfg.max_joint_step + _EPS:
                found.append("max_step")
            return found

        broken = violations(q)
        if not broken:
            return q
        lo, hi = 0.0, 1.0
        for _ in range(_BISECT_ITERATIONS):
            mid = 0.5 * (lo + hi)
            if violations(anchor + mid * (q - anchor)):
                hi = mid
            else:
                lo = mid
        out = anchor + lo * (q - anchor)
        p_q, p_out = fk(q), fk(out)
        for rule in broken:
            if rule != "max_step":
                self._intervene(t, rule, f"tcp {_fmt(p_q)} -> {_fmt(p_out)} (scaled {lo:.3f})")
        return out

    def _clamp_ee(self, d: np.ndarray, state: ArmState, t: float) -> np.ndarray:
        cfg = self.config
        d = d.copy()
        trans, rot = d[:3], d[3:6]
        if self._box is not None:
            tcp = self._require(state.tcp_pos, "tcp_pos", "workspace")
            low, high = self._box
            # project the target into the box; from outside (overshoot, pushed by hand) this
            # leads the tcp back, at most max_tcp_step / max_tcp_speed per tick (applied next)
            clipped = np.clip(tcp + trans, low, high) - tcp
            if np.any(clipped != trans):
                self._intervene(
                    t, "workspace", f"target {_fmt(tcp + trans)} -> {_fmt(tcp + clipped)}"
                )
            trans = clipped
        speed_step = None if cfg.max_tcp_speed is None else cfg.max_tcp_speed * self._period
        for rule, limit in (("tcp_step", cfg.max_tcp_step), ("tcp_speed", speed_step)):
            trans = self._limit_norm(t, rule, trans, limit, "m")
        rot = self._limit_norm(t, "rot_step", rot, cfg.max_rot_step, "rad")
        d[:3], d[3:6] = trans, rot
        return d

    def _limit_norm(
        self, t: float, rule: str, v: np.ndarray, limit: float | None, unit: str
    ) -> np.ndarray:
        if limit is None:
            return v
        norm = float(np.linalg.norm(v))
        if norm <= limit:
            return v
        self._intervene(t, rule, f"|step| {norm:.4g} {unit} -> {limit:.4g} {unit}")
        return v * (limit / norm)


def _box_excess(p: np.ndarray, box: tuple[np.ndarray, np.ndarray] | None) -> float:
    if box is None:
        return 0.0
    return float(np.linalg.norm(p - np.clip(p, box[0], box[1])))


def _fmt(p: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):.4f}" for v in p) + "]"


__all__ = [
    "CLAMP_RULES",
    "HOLD_RULES",
    "RULES",
    "SAFETY_MODES",
    "ArmState",
    "HoldUnavailableError",
    "Intervention",
    "SafetyConfig",
    "SafetyLayer",
    "SafetyMode",
    "sim_fk",
    "sim_joint_ranges",
]
