"""``DynamixelArm``: a Dynamixel protocol 2.0 follower arm (Koch, SO-100, ALOHA style).

Why: low-cost follower arms are chains of X-series servos in position mode. Each control step
is one GroupSyncWrite of Goal Position to every servo and each reading one GroupSyncRead of
Present Velocity + Present Position, so the bus cost does not grow with round trips per joint.
Joints are addressed by name; the calibration maps each name to a servo and converts::

    joint (rad) = sign * (ticks - zero_ticks) * 2π / ticks_per_rev

``zero_ticks`` is the reading at joint angle 0 (the homing offset), recorded by holding the arm
in a known reference pose (:func:`record_calibration`). Targets are clamped to the calibration's
joint limits and to the limits stored in each servo, so no command is refused by a servo
silently (sync write has no reply).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dynamixel_sdk as dxl
import numpy as np

from drivers.arms.dynamixel_bus import (
    ADDR_GOAL_POSITION,
    ADDR_MAX_POSITION_LIMIT,
    ADDR_MIN_POSITION_LIMIT,
    ADDR_PRESENT_POSITION,
    ADDR_PRESENT_VELOCITY,
    ADDR_TORQUE_ENABLE,
    DEFAULT_BAUDRATE,
    DEFAULT_PORT,
    LEN_POSITION,
    SDK_BAUDRATES,
    VELOCITY_UNIT_RAD_S,
    DynamixelBus,
    DynamixelBusError,
)
from drivers.arms.servo_interpolation import check_joint_vector
from drivers.interfaces import Arm, JointState
from robot_learning.specs import FeatureSpec, SpecDict

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DynamixelJoint:
    """One servo driving the joint ``name``; angles in rad, limits in joint space."""

    name: str
    id: int
    zero_ticks: int = 2048
    sign: float = 1.0
    ticks_per_rev: int = 4096
    low: float = -math.pi
    high: float = math.pi

    def to_rad(self, ticks: int) -> float:
        return self.sign * (ticks - self.zero_ticks) * 2.0 * math.pi / self.ticks_per_rev

    def to_ticks(self, angle: float) -> int:
        return self.zero_ticks + round(self.sign * angle * self.ticks_per_rev / (2.0 * math.pi))


@dataclass(frozen=True)
class DynamixelArmCalibration:
    """Every joint of the follower arm, in command order; saved as JSON."""

    joints: tuple[DynamixelJoint, ...]
    port: str | None = None
    baudrate: int = DEFAULT_BAUDRATE

    def __post_init__(self) -> None:
        if not self.joints:
            raise ValueError("a Dynamixel arm calibration needs at least one joint")
        for label, values in (("joint names", self.names), ("servo ids", self.ids)):
            seen = [str(v) for v in values]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"Dynamixel arm calibration has duplicate {label}: {dupes}")
        for j in self.joints:
            if j.sign not in (1.0, -1.0):
                raise ValueError(f"joint {j.name!r}: sign must be 1 or -1, got {j.sign}")
            if not 0 <= j.id <= dxl.MAX_ID:
                raise ValueError(f"joint {j.name!r}: servo id must be 0..{dxl.MAX_ID}, got {j.id}")
            if j.ticks_per_rev <= 0 or not j.low < j.high:
                raise ValueError(
                    f"joint {j.name!r}: need ticks_per_rev > 0 and low < high, got "
                    f"{j.ticks_per_rev}, [{j.low}, {j.high}]"
                )
        if self.baudrate not in SDK_BAUDRATES:
            raise ValueError(f"baudrate {self.baudrate} is not one of {SDK_BAUDRATES}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def ids(self) -> list[int]:
        return [j.id for j in self.joints]

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "baudrate": self.baudrate,
            "joints": [asdict(j) for j in self.joints],
        }

    @staticmethod
    def from_dict(obj: Mapping[str, Any], source: str = "calibration") -> DynamixelArmCalibration:
        try:
            joints = tuple(
                DynamixelJoint(
                    name=str(j["name"]),
                    id=int(j["id"]),
                    zero_ticks=int(j.get("zero_ticks", 2048)),
                    sign=float(j.get("sign", 1.0)),
                    ticks_per_rev=int(j.get("ticks_per_rev", 4096)),
                    low=float(j.get("low", -math.pi)),
                    high=float(j.get("high", math.pi)),
                )
                for j in obj["joints"]
            )
            return DynamixelArmCalibration(
                joints, obj.get("port"), int(obj.get("baudrate", DEFAULT_BAUDRATE))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{source}: invalid ({type(exc).__name__}: {exc}); expected 'joints': a list of "
                "{name, id, zero_ticks, sign, ticks_per_rev, low, high} and optionally 'port', "
                "'baudrate'"
            ) from exc

    @staticmethod
    def load(path: str | Path) -> DynamixelArmCalibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Dynamixel arm calibration {str(path)!r} not found; record one with "
                "drivers.arms.dynamixel.record_calibration (docs/arms.md)"
            )
        return DynamixelArmCalibration.from_dict(json.loads(path.read_text()), str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def record_calibration(
    bus: DynamixelBus,
    joints: Sequence[DynamixelJoint],
    reference: Mapping[str, float],
) -> DynamixelArmCalibration:
    """Read the arm (held in the ``reference`` pose, torque off) and return its calibration.

    ``joints`` give name, id, sign, ticks per turn and limits; their ``zero_ticks`` are replaced
    by the ones that make the current readings equal the reference angles (rad).
    """
    missing = [j.name for j in joints if j.name not in reference]
    if missing:
        raise ValueError(f"no reference angle for joints {missing}; have {sorted(reference)}")
    ticks = bus.sync_read(ADDR_PRESENT_POSITION, LEN_POSITION, [j.id for j in joints])
    recorded = []
    for j in joints:
        shift = round(j.sign * reference[j.name] * j.ticks_per_rev / (2.0 * math.pi))
        recorded.append(DynamixelJoint(**{**asdict(j), "zero_ticks": ticks[j.id] - shift}))
    return DynamixelArmCalibration(tuple(recorded), bus.port, bus.baudrate)


class DynamixelArm(Arm):
    """A follower arm commanded by absolute joint targets; torque is on while connected.

    ``calibration``: a JSON file or a :class:`DynamixelArmCalibration`; ``port``/``baudrate``
    override its own. Joint states are stamped with ``time.monotonic()`` when read.
    """

    def __init__(
        self,
        calibration: str | Path | DynamixelArmCalibration | None = None,
        port: str | None = None,
        baudrate: int | None = None,
        retries: int = 2,
    ) -> None:
        super().__init__()
        if calibration is None:
            raise ValueError(
                "DynamixelArm needs calibration= (a JSON file or DynamixelArmCalibration mapping "
                "joint names to servo ids); see docs/arms.md"
            )
        if not isinstance(calibration, DynamixelArmCalibration):
            calibration = DynamixelArmCalibration.load(calibration)
        self.calibration = calibration
        self.port = port or calibration.port or DEFAULT_PORT
        self._bus = DynamixelBus(
            self.port, baudrate or calibration.baudrate, retries, label="Dynamixel arm"
        )
        n = len(calibration.joints)
        self._low = np.array([j.low for j in calibration.joints])
        self._high = np.array([j.high for j in calibration.joints])
        self._tick_low = np.full(n, -(2**31))
        self._tick_high = np.full(n, 2**31 - 1)

    @property
    def device_name(self) -> str:
        return f"DynamixelArm({getattr(self, 'port', '?')})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        ids = self.calibration.ids
        self._bus.open()
        try:
            silent = self._bus.silent_ids(ids)
            if silent:
                raise DynamixelBusError(
                    f"Dynamixel arm on {self._bus.where}: servo id(s) {sorted(silent)} do not "
                    f"answer ({'; '.join(sorted(set(silent.values())))}); the calibration "
                    f"expects ids {ids}. Check power, cabling, ids and baud rate"
                )
            limits = self._bus.sync_read_fields(
                ADDR_MAX_POSITION_LIMIT,
                [(ADDR_MAX_POSITION_LIMIT, 4), (ADDR_MIN_POSITION_LIMIT, 4)],
                ids,
            )
            self._tick_high = np.array([limits[i][0] for i in ids])
            self._tick_low = np.array([limits[i][1] for i in ids])
            self._set_torque(True)
        except Exception:
            self._bus.close()
            raise

    def _disconnect(self) -> None:
        try:
            self._set_torque(False)
        except (DynamixelBusError, OSError) as exc:
            LOG.warning("%s: torque off failed on disconnect: %s", self.device_name, exc)
        finally:
            self._bus.close()

    def set_torque(self, enabled: bool) -> None:
        """Torque on (holds its pose, follows goals) or off (moves freely by hand)."""
        self.require_connected("set_torque")
        self._set_torque(enabled)

    def _set_torque(self, enabled: bool) -> None:
        for dxl_id in self.calibration.ids:
            self._bus.write1(dxl_id, ADDR_TORQUE_ENABLE, int(enabled))

    # ---- specs ---------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.calibration.names

    def observation_spec(self) -> SpecDict:
        names = self.joint_names
        return SpecDict(
            {
                "joint_pos": FeatureSpec((len(names),), "float32", "lowdim", names=names),
                "joint_vel": FeatureSpec((len(names),), "float32", "lowdim", names=names),
            }
        )

    def action_spec(self) -> SpecDict:
        names = self.joint_names
        return SpecDict(
            {
                "joint_pos": FeatureSpec(
                    (len(names),),
                    "float32",
                    "lowdim",
                    low=tuple(self._low.tolist()),
                    high=tuple(self._high.tolist()),
                    names=names,
                    description="absolute joint position targets, rad",
                )
            }
        )

    # ---- I/O -----------------------------------------------------------------------------------
    def read_joint_state(self) -> JointState:
        """Positions (rad) and velocities (rad/s) of every joint from one sync read."""
        self.require_connected("read_joint_state")
        fields = self._bus.sync_read_fields(
            ADDR_PRESENT_VELOCITY,
            [(ADDR_PRESENT_VELOCITY, 4), (ADDR_PRESENT_POSITION, 4)],
            self.calibration.ids,
        )
        stamp = time.monotonic()
        joints = self.calibration.joints
        return JointState(
            names=self.joint_names,
            position=np.array([j.to_rad(fields[j.id][1]) for j in joints]),
            velocity=np.array([j.sign * fields[j.id][0] * VELOCITY_UNIT_RAD_S for j in joints]),
            timestamp=stamp,
        )

    def send_joint_targets(self, positions: np.ndarray, t_exec: float | None = None) -> np.ndarray:
        """Clamp to the limits and sync-write Goal Position now; returns the angles sent."""
        self.require_connected("send_joint_targets")
        q = check_joint_vector(positions, self.joint_names, "joint targets")
        q = np.clip(q, self._low, self._high)
        joints = self.calibration.joints
        ticks = np.array([j.to_ticks(v) for j, v in zip(joints, q)])
        ticks = np.clip(ticks, self._tick_low, self._tick_high)  # the servos' own limits
        self._bus.sync_write(
            ADDR_GOAL_POSITION, LEN_POSITION, {j.id: int(t) for j, t in zip(joints, ticks)}
        )
        return np.array([j.to_rad(int(t)) for j, t in zip(joints, ticks)])

    def send_joint_targets_by_name(self, targets: Mapping[str, float]) -> np.ndarray:
        """As :meth:`send_joint_targets`, with every joint given by name."""
        names = self.joint_names
        unknown = sorted(set(targets) - set(names))
        missing = [n for n in names if n not in targets]
        if unknown or missing:
            raise ValueError(
                f"joint names do not match: unknown {unknown}, missing {missing}; valid joints: "
                f"{list(names)}"
            )
        return self.send_joint_targets(np.array([targets[n] for n in names], dtype=np.float64))


__all__ = [
    "DynamixelArm",
    "DynamixelArmCalibration",
    "DynamixelBusError",
    "DynamixelJoint",
    "record_calibration",
]
