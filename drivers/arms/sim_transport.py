"""``SimURTransport``: the :class:`~drivers.arms.ur.URTransport` protocol over the MuJoCo arm.

Why: the UR driver's servo thread, interpolation and stop handling cannot be checked against a
UR controller here (there is no emulator for one). This transport plays the controller's part
with :class:`~drivers.arms.sim.SimArm`: each ``servo_j`` steps the sim one servo period towards
the target, and a test can raise a protective or emergency stop, during which the arm holds
and ``servo_j`` is refused, as on the real controller.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from drivers.arms.sim import SimArm

LOG = logging.getLogger(__name__)


class SimURTransport:
    """A UR controller stand-in; ``history`` keeps the recent ``(wall time, target)`` commands.

    ``arm``: an existing (connected or not) SimArm; otherwise one is built for ``task`` with its
    control rate set to ``frequency_hz`` so one servo call is one sim step.
    """

    def __init__(
        self,
        arm: SimArm | None = None,
        frequency_hz: float = 500.0,
        task: str = "lift",
        history: int = 5000,
        **env_overrides: Any,
    ) -> None:
        self._owns_arm = arm is None
        self.arm = arm or SimArm(task=task, control_hz=frequency_hz, **env_overrides)
        self.arm.connect()
        self._lock = threading.Lock()
        self._protective = False
        self._emergency = False
        self.servo_calls = 0
        self.refused_calls = 0
        self.stop_calls = 0
        self.history: collections.deque[tuple[float, np.ndarray]] = collections.deque(
            maxlen=history
        )

    # ---- test controls -------------------------------------------------------------------------
    def trigger_protective_stop(self) -> None:
        """Stop as a collision or a safety-limit violation would; the arm holds its pose."""
        LOG.info("sim controller: protective stop")
        self._protective = True

    def trigger_emergency_stop(self) -> None:
        self._emergency = True

    def clear_stops(self) -> None:
        """Unlock, as an operator does on the teach pendant."""
        self._protective = self._emergency = False

    # ---- URTransport ---------------------------------------------------------------------------
    def servo_j(
        self,
        q: Sequence[float],
        velocity: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool:
        with self._lock:
            if self._protective or self._emergency:
                self.refused_calls += 1
                return False
            target = np.asarray(q, dtype=np.float64)
            self.arm.send_joint_targets(target)
            self.servo_calls += 1
            self.history.append((_now(), target))
            return True

    def servo_stop(self) -> None:
        self.stop_calls += 1

    def get_actual_q(self) -> list[float]:
        with self._lock:
            return self.arm.read_joint_state().position.tolist()

    def get_actual_qd(self) -> list[float]:
        with self._lock:
            velocity = self.arm.read_joint_state().velocity
        assert velocity is not None
        return velocity.tolist()

    def is_protective_stopped(self) -> bool:
        return self._protective

    def is_emergency_stopped(self) -> bool:
        return self._emergency

    def get_timestamp(self) -> float:
        with self._lock:
            return self.arm.read_joint_state().timestamp

    def disconnect(self) -> None:
        if self._owns_arm:
            with self._lock:
                self.arm.disconnect()


def _now() -> float:
    return time.monotonic()


__all__ = ["SimURTransport"]
