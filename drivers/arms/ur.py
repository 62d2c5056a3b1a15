"""``URArm``: a Universal Robots e-Series arm streamed with ``servoJ`` from timestamped waypoints.

Why: policies send joint targets at ~10 Hz with the time each should be reached; the UR
controller wants a ``servoJ`` target every 2-8 ms. A servo thread samples a
:class:`~drivers.arms.servo_interpolation.ServoInterpolator` at ``frequency_hz`` and feeds the
controller, and checks for protective / emergency stops every period: a stop ends streaming at
once and the next :meth:`URArm.send_joint_targets` raises :class:`ProtectiveStopError`.

The controller is reached through a small :class:`URTransport` protocol. :class:`RTDETransport`
adapts ``ur_rtde`` to it and is verified on hardware only (there is no UR controller emulator
here); the servo loop, interpolation and stop handling are exercised against the MuJoCo arm
through :class:`drivers.arms.sim_transport.SimURTransport`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from drivers.arms.servo_interpolation import InterpolationConfig, ServoInterpolator
from drivers.interfaces import Arm, DeviceNotConnectedError, JointState
from robot_learning.specs import FeatureSpec, SpecDict

LOG = logging.getLogger(__name__)

UR_JOINTS: tuple[str, ...] = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
TWO_PI = 2.0 * np.pi
# ur_description limits: ±2π everywhere except the elbow (±π, self-collision)
UR5E_LOW = (-TWO_PI, -TWO_PI, -np.pi, -TWO_PI, -TWO_PI, -TWO_PI)
UR5E_HIGH = (TWO_PI, TWO_PI, np.pi, TWO_PI, TWO_PI, TWO_PI)
UR5E_MAX_VELOCITY = 3.14  # rad/s, every joint of a UR5e
FREQUENCY_RANGE = (125.0, 500.0)  # CB3 runs at 125 Hz, e-Series up to 500 Hz
LOOKAHEAD_RANGE = (0.03, 0.2)  # s, servoJ's documented range
GAIN_RANGE = (100.0, 2000.0)  # servoJ's documented range
MAX_LAG_S = 0.02  # the servo loop may fall this far behind before it re-plans


class ProtectiveStopError(RuntimeError):
    """The controller is protectively or emergency stopped; streaming has ended."""


class URTransport(Protocol):
    """The few controller calls :class:`URArm` needs (names follow ur_rtde's)."""

    def servo_j(
        self,
        q: Sequence[float],
        velocity: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool: ...

    def servo_stop(self) -> None: ...

    def get_actual_q(self) -> list[float]: ...

    def get_actual_qd(self) -> list[float]: ...

    def is_protective_stopped(self) -> bool: ...

    def is_emergency_stopped(self) -> bool: ...

    def get_timestamp(self) -> float: ...

    def disconnect(self) -> None: ...


class RTDETransport:
    """``ur_rtde`` behind :class:`URTransport`. Verified on hardware only; keep it this thin."""

    def __init__(self, host: str, frequency_hz: float) -> None:
        try:
            import rtde_control
            import rtde_receive
        except ImportError as exc:
            raise ImportError(
                "the UR arm driver needs the 'ur-rtde' package (pip install ur-rtde)"
            ) from exc
        try:
            self._receive = rtde_receive.RTDEReceiveInterface(host, frequency_hz)
            self._control = rtde_control.RTDEControlInterface(host, frequency_hz)
        except RuntimeError as exc:
            raise DeviceNotConnectedError(
                f"cannot reach the UR controller at {host!r} ({exc}); check the network, that "
                "the robot is powered on, brakes released and in remote control mode"
            ) from exc

    def servo_j(
        self,
        q: Sequence[float],
        velocity: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool:
        return bool(
            self._control.servoJ(list(q), velocity, acceleration, time, lookahead_time, gain)
        )

    def servo_stop(self) -> None:
        self._control.servoStop()

    def get_actual_q(self) -> list[float]:
        return list(self._receive.getActualQ())

    def get_actual_qd(self) -> list[float]:
        return list(self._receive.getActualQd())

    def is_protective_stopped(self) -> bool:
        return bool(self._receive.isProtectiveStopped())

    def is_emergency_stopped(self) -> bool:
        return bool(self._receive.isEmergencyStopped())

    def get_timestamp(self) -> float:
        return float(self._receive.getTimestamp())

    def disconnect(self) -> None:
        self._control.stopScript()
        self._control.disconnect()
        self._receive.disconnect()


def _check_range(label: str, value: float, bounds: tuple[float, float]) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{label} must be in [{bounds[0]}, {bounds[1]}], got {value}")
    return float(value)


class URArm(Arm):
    """A UR arm streamed at ``frequency_hz`` from waypoints given to :meth:`send_joint_targets`.

    ``t_exec`` is in this arm's clock (``clock``, default ``time.monotonic``): the time a target
    should be reached; ``None`` reaches it as fast as the velocity/acceleration limits allow.
    Joint states are stamped with the same clock when read. ``transport`` replaces the RTDE
    connection (e.g. the sim transport); it is closed by :meth:`disconnect`.
    """

    def __init__(
        self,
        host: str = "",
        frequency_hz: float = 500.0,
        lookahead_time: float = 0.1,
        gain: float = 300.0,
        joint_low: Sequence[float] = UR5E_LOW,
        joint_high: Sequence[float] = UR5E_HIGH,
        max_velocity: float | Sequence[float] = UR5E_MAX_VELOCITY,
        max_acceleration: float | Sequence[float] = 15.0,
        interpolation: str = "cubic",
        max_lead_s: float = 5.0,
        transport: URTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if not host and transport is None:
            raise ValueError("URArm needs host= (the controller's IP address) or a transport=")
        self.host = host
        self.frequency_hz = _check_range("frequency_hz", frequency_hz, FREQUENCY_RANGE)
        self.lookahead_time = _check_range("lookahead_time", lookahead_time, LOOKAHEAD_RANGE)
        self.gain = _check_range("gain", gain, GAIN_RANGE)
        self.period = 1.0 / self.frequency_hz
        self.config = InterpolationConfig(
            method=interpolation,  # type: ignore[arg-type]  # validated below
            max_velocity=_floats(max_velocity),
            max_acceleration=_floats(max_acceleration),
            max_lead_s=max_lead_s,
            joint_low=_floats(joint_low),
            joint_high=_floats(joint_high),
        )
        self.config.validate(len(UR_JOINTS))
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._interp: ServoInterpolator | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fault: str | None = None
        self.servo_count = 0
        # (clock time, seconds) of every stall longer than MAX_LAG_S, for diagnostics
        self.stalls: collections.deque[tuple[float, float]] = collections.deque(maxlen=1000)

    @property
    def device_name(self) -> str:
        return f"URArm({self.host or 'transport'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._transport is None:
            self._transport = RTDETransport(self.host, self.frequency_hz)
        try:
            self._fault = None
            self._start_streaming()
        except Exception:
            self._transport.disconnect()
            raise

    def _disconnect(self) -> None:
        self._stop_streaming()
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.servo_stop()
            finally:
                transport.disconnect()

    @property
    def transport(self) -> URTransport:
        if self._transport is None:
            raise DeviceNotConnectedError(f"{self.device_name} has no open transport")
        return self._transport

    def _start_streaming(self) -> None:
        q = self._actual_q()
        with self._lock:
            self._interp = ServoInterpolator(UR_JOINTS, q, self._clock(), self.config)
        self._stop.clear()
        self._thread = threading.Thread(target=self._servo_loop, name="ur-servo", daemon=True)
        self._thread.start()

    def _stop_streaming(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                LOG.error("%s: servo thread did not stop within 2 s", self.device_name)
        self._thread = None

    # ---- the servo loop ------------------------------------------------------------------------
    def _servo_loop(self) -> None:
        transport, interp = self.transport, self._interp
        assert interp is not None
        tick = self._clock()
        while not self._stop.is_set():
            try:
                reason = self._stop_reason(transport)
                if reason is None:
                    with self._lock:  # one period of the plan per command, whatever the jitter
                        q = interp.step(tick)
                    args = (self.period, self.lookahead_time, self.gain)
                    if transport.servo_j(q.tolist(), 0.0, 0.0, *args):
                        self.servo_count += 1
                    else:
                        reason = self._stop_reason(transport) or "the controller refused servoJ"
            except Exception as exc:  # a dead link must stop streaming, never spin silently
                reason = f"servo loop failed: {type(exc).__name__}: {exc}"
            if reason is not None:
                self._set_fault(reason, transport)
                return
            tick += self.period
            delay = tick - self._clock()
            if delay > 0:
                self._stop.wait(delay)
            elif -delay > MAX_LAG_S:  # stalled: re-plan from here instead of a catch-up jump
                tick = self._clock()
                self.stalls.append((tick, -delay))
                LOG.debug("%s: servo loop stalled %.1f ms", self.device_name, -delay * 1e3)
                with self._lock:
                    interp.resync(tick - self.period)

    @staticmethod
    def _stop_reason(transport: URTransport) -> str | None:
        if transport.is_emergency_stopped():
            return "emergency stop"
        if transport.is_protective_stopped():
            return "protective stop"
        return None

    def _set_fault(self, reason: str, transport: URTransport) -> None:
        LOG.error("%s: %s; servo streaming stopped", self.device_name, reason)
        try:
            transport.servo_stop()
        except Exception as exc:
            LOG.warning("%s: servoStop after %s failed: %s", self.device_name, reason, exc)
        self._fault = reason  # last: whoever sees the fault sees streaming already stopped

    @property
    def fault(self) -> str | None:
        """Why streaming stopped (``"protective stop"``, ...), or None while streaming."""
        return self._fault

    def reset_fault(self) -> None:
        """Resume streaming after the stop was cleared on the controller, holding the arm's pose."""
        self.require_connected("reset_fault")
        reason = self._stop_reason(self.transport)
        if reason is not None:
            raise ProtectiveStopError(
                f"{self.device_name}: the controller still reports a {reason}; unlock it on the "
                "teach pendant first"
            )
        self._stop_streaming()
        self._fault = None
        self._start_streaming()

    # ---- Arm API -------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return UR_JOINTS

    def observation_spec(self) -> SpecDict:
        n = len(UR_JOINTS)
        return SpecDict(
            {
                "joint_pos": FeatureSpec((n,), "float32", "lowdim", names=UR_JOINTS),
                "joint_vel": FeatureSpec((n,), "float32", "lowdim", names=UR_JOINTS),
            }
        )

    def action_spec(self) -> SpecDict:
        low, high = self.config.limits(len(UR_JOINTS))
        return SpecDict(
            {
                "joint_pos": FeatureSpec(
                    (len(UR_JOINTS),),
                    "float32",
                    "lowdim",
                    low=tuple(low.tolist()),
                    high=tuple(high.tolist()),
                    names=UR_JOINTS,
                    description="absolute joint position targets, rad",
                )
            }
        )

    def _actual_q(self) -> np.ndarray:
        q = np.asarray(self.transport.get_actual_q(), dtype=np.float64)
        if q.shape != (len(UR_JOINTS),) or not np.all(np.isfinite(q)):
            raise RuntimeError(f"{self.device_name}: controller reported joint positions {q}")
        return q

    def read_joint_state(self) -> JointState:
        self.require_connected("read_joint_state")
        stamp = self._clock()
        return JointState(
            names=UR_JOINTS,
            position=self._actual_q(),
            velocity=np.asarray(self.transport.get_actual_qd(), dtype=np.float64),
            timestamp=stamp,
        )

    def send_joint_targets(self, positions: np.ndarray, t_exec: float | None = None) -> np.ndarray:
        """Queue a waypoint to reach at ``t_exec``; returns it clamped to the joint limits."""
        return self._send(positions, t_exec)

    def send_joint_targets_by_name(
        self, targets: Mapping[str, float], t_exec: float | None = None
    ) -> np.ndarray:
        """As :meth:`send_joint_targets`, with every joint given by name."""
        return self._send(targets, t_exec)

    def _send(self, targets: Any, t_exec: float | None) -> np.ndarray:
        self.require_connected("send_joint_targets")
        if self._fault is not None:
            raise ProtectiveStopError(
                f"{self.device_name}: {self._fault}; streaming has stopped and the target was "
                "not sent. Clear the stop on the controller, then call reset_fault()"
            )
        assert self._interp is not None
        now = self._clock()
        with self._lock:
            return self._interp.add_waypoint(targets, now if t_exec is None else t_exec, now)

    @property
    def commanded(self) -> np.ndarray:
        """The latest target streamed to the controller."""
        self.require_connected("commanded")
        assert self._interp is not None
        with self._lock:
            return self._interp.position


def _floats(value: float | Sequence[float]) -> float | tuple[float, ...]:
    return float(value) if isinstance(value, int | float) else tuple(float(v) for v in value)


__all__ = [
    "FREQUENCY_RANGE",
    "UR_JOINTS",
    "ProtectiveStopError",
    "RTDETransport",
    "URArm",
    "URTransport",
]
