"""Leader-arm teleop (GELLO / ALOHA style): a Dynamixel replica the operator moves by hand.

Why: a kinematic replica of the robot gives joint-space demonstrations with the robot's own
redundancy resolved by the operator (no IK), which is how GELLO and ALOHA collect data. The
leader's servos run with torque off; every control step one protocol 2.0 GroupSyncRead fetches
Present Position (address 132, 4 bytes, X-series control table) from all of them.

Ticks -> robot joint, per joint of the calibration file::

    angle  = (ticks - 2048) * 2π / 4096               servo angle, 0 at the centre tick
    joint  = sign * (angle - offset)                  wrapped to within ±π of ``reference``
    gripper = (ticks - open_ticks) / (closed_ticks - open_ticks), clipped to 0 (open) .. 1

and the result is placed into the robot's action spec by joint NAME. Record a calibration with
``python -m drivers.teleop.leader calibrate`` (docs/teleop.md): put the leader in a known
reference pose, and the current ticks become that pose's offsets.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dynamixel_sdk as dxl
import yaml

from drivers.arms.dynamixel_bus import (
    ADDR_PRESENT_POSITION,
    ADDR_TORQUE_ENABLE,
    DEFAULT_BAUDRATE,
    DEFAULT_PORT,
    LEN_PRESENT_POSITION,
    SDK_BAUDRATES,
    DynamixelBus,
    DynamixelBusError,
    rad_to_ticks,
    ticks_to_rad,
    wrap_near,
)
from drivers.interfaces import Robot, TeleopDevice
from drivers.teleop.mapping import (
    GRIPPER_NAME,
    JointTargetLayout,
    action_time,
    joint_target_layout,
    require_action_spec,
    resolve_action_spec,
)
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)

# the leader's bus failures are the shared bus's errors (kept under the leader's name)
LeaderArmError = DynamixelBusError


# ---- calibration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LeaderJoint:
    """One leader servo driving the robot joint ``name``: ``joint = sign * (angle - offset)``."""

    name: str
    id: int
    sign: float = 1.0
    offset: float = 0.0  # rad
    reference: float | None = None  # rad; readings wrap to within ±π of it (None: no wrap)

    def to_robot(self, ticks: int) -> float:
        value = self.sign * (ticks_to_rad(ticks) - self.offset)
        return value if self.reference is None else wrap_near(value, self.reference)


@dataclass(frozen=True)
class LeaderGripper:
    """The leader's gripper trigger servo: ticks at open and closed map to 0 .. 1."""

    id: int
    open_ticks: int
    closed_ticks: int
    name: str = GRIPPER_NAME

    def to_robot(self, ticks: int) -> float:
        fraction = (ticks - self.open_ticks) / (self.closed_ticks - self.open_ticks)
        return min(max(fraction, 0.0), 1.0)


@dataclass(frozen=True)
class LeaderCalibration:
    """Every leader servo, by robot joint name; saved as YAML (or JSON by file suffix)."""

    joints: tuple[LeaderJoint, ...]
    gripper: LeaderGripper | None = None
    port: str | None = None
    baudrate: int = DEFAULT_BAUDRATE
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.joints:
            raise ValueError("a leader calibration needs at least one joint")
        for label, values in (("names", self.names), ("servo ids", self.ids)):
            seen = [str(v) for v in values]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"leader calibration has duplicate {label}: {dupes}")
        for joint in self.joints:
            if joint.sign not in (1.0, -1.0):
                raise ValueError(f"joint {joint.name!r}: sign must be 1 or -1, got {joint.sign}")
            if not 0 <= joint.id <= dxl.MAX_ID:
                raise ValueError(f"joint {joint.name!r}: servo id must be 0..{dxl.MAX_ID}")
        if self.gripper is not None and self.gripper.open_ticks == self.gripper.closed_ticks:
            raise ValueError("gripper open_ticks and closed_ticks must differ")
        if self.baudrate not in SDK_BAUDRATES:
            raise ValueError(f"baudrate {self.baudrate} is not one of {SDK_BAUDRATES}")

    @property
    def ids(self) -> list[int]:
        return [j.id for j in self.joints] + ([self.gripper.id] if self.gripper else [])

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints] + ([self.gripper.name] if self.gripper else [])

    def targets(self, ticks: Mapping[int, int]) -> dict[str, float]:
        """Robot joint targets (rad) and gripper closure (0..1) by name, from servo ticks."""
        out = {j.name: j.to_robot(ticks[j.id]) for j in self.joints}
        if self.gripper is not None:
            out[self.gripper.name] = self.gripper.to_robot(ticks[self.gripper.id])
        return out

    # ---- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "port": self.port,
            "baudrate": self.baudrate,
            "joints": [asdict(j) for j in self.joints],
            "gripper": asdict(self.gripper) if self.gripper else None,
        }
        if self.notes:
            out["notes"] = dict(self.notes)
        return out

    @staticmethod
    def from_dict(obj: Mapping[str, Any], source: str = "leader calibration") -> LeaderCalibration:
        try:
            joints = tuple(
                LeaderJoint(
                    name=str(j["name"]),
                    id=int(j["id"]),
                    sign=float(j.get("sign", 1.0)),
                    offset=float(j.get("offset", 0.0)),
                    reference=None if j.get("reference") is None else float(j["reference"]),
                )
                for j in obj["joints"]
            )
            g = obj.get("gripper")
            gripper = None
            if g:
                gripper = LeaderGripper(
                    id=int(g["id"]),
                    open_ticks=int(g["open_ticks"]),
                    closed_ticks=int(g["closed_ticks"]),
                    name=str(g.get("name", GRIPPER_NAME)),
                )
            return LeaderCalibration(
                joints=joints,
                gripper=gripper,
                port=obj.get("port"),
                baudrate=int(obj.get("baudrate", DEFAULT_BAUDRATE)),
                notes=dict(obj.get("notes") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{source}: invalid ({type(exc).__name__}: {exc}); expected 'joints': a list of "
                "{name, id, sign, offset[, reference]} and optionally 'gripper': "
                "{id, open_ticks, closed_ticks}, 'port', 'baudrate'"
            ) from exc

    @staticmethod
    def load(path: str | Path) -> LeaderCalibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"leader calibration {str(path)!r} not found; record one with "
                "'python -m drivers.teleop.leader calibrate --out FILE' (docs/teleop.md)"
            )
        text = path.read_text()
        obj = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(obj, Mapping):
            raise ValueError(f"leader calibration {str(path)!r} is not a mapping")
        return LeaderCalibration.from_dict(obj, source=f"leader calibration {str(path)!r}")

    def save(self, path: str | Path) -> None:
        path = Path(path)
        obj = self.to_dict()
        if path.suffix == ".json":
            path.write_text(json.dumps(obj, indent=2) + "\n")
        else:
            header = (
                "# leader arm calibration: joint = sign * (angle - offset), "
                "angle = (ticks - 2048) * 2pi / 4096\n"
            )
            path.write_text(header + yaml.safe_dump(obj, sort_keys=False))


def calibration_from_reference(
    ticks: Mapping[int, int],
    joints: Sequence[tuple[str, int, float]],
    reference: Mapping[str, float],
) -> tuple[LeaderJoint, ...]:
    """Offsets that make the current servo ticks read as the ``reference`` pose.

    ``joints`` are ``(robot joint name, servo id, sign)``; the sign says whether the leader
    joint turns the same way as the robot's (find it by moving one joint and watching).
    """
    out = []
    for name, dxl_id, sign in joints:
        if name not in reference:
            raise ValueError(f"no reference angle for joint {name!r}; have {sorted(reference)}")
        offset = ticks_to_rad(ticks[dxl_id]) - sign * reference[name]
        out.append(LeaderJoint(name, dxl_id, float(sign), offset, float(reference[name])))
    return tuple(out)


# ---- the device ---------------------------------------------------------------------------------
class LeaderArmTeleop(TeleopDevice):
    """Joint targets from a Dynamixel leader arm, placed into the robot's action spec by name.

    ``calibration``: a YAML/JSON file (or a :class:`LeaderCalibration`). ``port`` / ``baudrate``
    override the file's (default ``/dev/ttyUSB0``, 57600). ``retries``: sync-read retries per
    step on a corrupted or missing status packet before the step fails.
    """

    def __init__(
        self,
        robot: Robot | None = None,
        *,
        calibration: str | Path | LeaderCalibration | None = None,
        port: str | None = None,
        baudrate: int | None = None,
        retries: int = 2,
        action_spec: SpecDict | None = None,
    ) -> None:
        super().__init__()
        if calibration is None:
            raise ValueError(
                "the leader arm needs calibration= (a YAML or JSON file mapping servo ids to the "
                "robot's joint names); record one with 'python -m drivers.teleop.leader "
                "calibrate --port PORT --out FILE' (docs/teleop.md)"
            )
        if not isinstance(calibration, LeaderCalibration):
            calibration = LeaderCalibration.load(calibration)
        self.calibration = calibration
        self.port = port or calibration.port or DEFAULT_PORT
        self.baudrate = baudrate or calibration.baudrate
        self.robot = robot
        self._given_spec = action_spec
        self._bus = DynamixelBus(self.port, self.baudrate, retries, label="leader arm")
        spec = resolve_action_spec(robot, action_spec, self.device_name)
        self._spec: SpecDict | None = spec
        self._layout: JointTargetLayout | None = None
        if spec is not None:
            self._layout = joint_target_layout(spec, calibration.names, self.device_name)

    @property
    def device_name(self) -> str:
        return f"LeaderArmTeleop({getattr(self, 'port', '?')})"

    def _connect(self) -> None:
        spec = require_action_spec(self.robot, self._given_spec, self.device_name)
        self._layout = joint_target_layout(spec, self.calibration.names, self.device_name)
        self._spec = spec
        self._bus.open()
        try:
            silent = self._bus.silent_ids(self.calibration.ids)  # retried on line noise
            if silent:
                raise LeaderArmError(
                    f"leader arm on {self._bus.where}: servo id(s) {sorted(silent)} do not answer "
                    f"({'; '.join(sorted(set(silent.values())))}); the calibration expects ids "
                    f"{self.calibration.ids}. Check power, cabling, ids and baud rate"
                )
            for dxl_id in self.calibration.ids:  # the operator moves the leader by hand
                self._bus.write1(dxl_id, ADDR_TORQUE_ENABLE, 0)
            self.read_ticks()
        except Exception:
            self._bus.close()
            raise

    def _disconnect(self) -> None:
        self._bus.close()

    def action_spec(self) -> SpecDict:
        if self._spec is None:
            return require_action_spec(self.robot, self._given_spec, self.device_name)
        return self._spec

    def read_ticks(self) -> dict[int, int]:
        """Present Position of every leader servo, ``{id: ticks}``."""
        return self._bus.sync_read(
            ADDR_PRESENT_POSITION, LEN_PRESENT_POSITION, self.calibration.ids
        )

    def get_action(self, observation: Observation) -> Action:
        self.require_connected("get_action")
        assert self._layout is not None
        targets = self.calibration.targets(self.read_ticks())
        return Action(
            values=self._layout.values(targets),
            t_exec=action_time(observation),
            info={"leader_targets": targets},
        )


# ---- calibration recording ----------------------------------------------------------------------
def record_calibration(
    bus: DynamixelBus,
    joints: Sequence[tuple[str, int, float]],
    reference: Mapping[str, float],
    gripper: LeaderGripper | None = None,
) -> LeaderCalibration:
    """Read the leader (held in the ``reference`` pose now) and return its calibration."""
    ids = [dxl_id for _, dxl_id, _ in joints]
    ticks = bus.sync_read(ADDR_PRESENT_POSITION, LEN_PRESENT_POSITION, ids)
    return LeaderCalibration(
        joints=calibration_from_reference(ticks, joints, reference),
        gripper=gripper,
        port=bus.port,
        baudrate=bus.baudrate,
    )


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main(argv: Sequence[str] | None = None) -> None:
    """``calibrate``: interactive calibration; ``show``: print the joint targets live."""
    from robot_learning.sim.robot_model import ARM_JOINTS, HOME_QPOS

    parser = argparse.ArgumentParser(prog="python -m drivers.teleop.leader")
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="record a calibration file from a reference pose")
    cal.add_argument("--port", default=DEFAULT_PORT)
    cal.add_argument("--baudrate", type=int, default=DEFAULT_BAUDRATE)
    cal.add_argument("--ids", default="1,2,3,4,5,6", help="servo ids, in --names order")
    cal.add_argument("--names", default=",".join(ARM_JOINTS), help="robot joint names")
    cal.add_argument("--signs", default="1,1,1,1,1,1", help="+1/-1 per joint")
    cal.add_argument(
        "--reference",
        default=",".join(f"{v:.4f}" for v in HOME_QPOS),
        help="robot joint angles (rad) of the pose the leader is held in (default: sim home)",
    )
    cal.add_argument("--gripper-id", type=int, default=None)
    cal.add_argument("--out", required=True)
    show = sub.add_parser("show", help="log the joint targets of a calibrated leader")
    show.add_argument("--calibration", required=True)
    show.add_argument("--port", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _run(args, parser)
    except (OSError, RuntimeError, ValueError) as exc:
        parser.exit(1, f"error: {exc}\n")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.command == "show":
        calibration = LeaderCalibration.load(args.calibration)
        bus = DynamixelBus(
            args.port or calibration.port or DEFAULT_PORT, calibration.baudrate, label="leader arm"
        )
        bus.open()
        try:
            while True:
                ticks = bus.sync_read(ADDR_PRESENT_POSITION, LEN_PRESENT_POSITION, calibration.ids)
                targets = calibration.targets(ticks)
                LOG.info("  ".join(f"{k}={v:+.3f}" for k, v in targets.items()))
                time.sleep(0.2)
        except KeyboardInterrupt:
            return
        finally:
            bus.close()

    names = args.names.split(",")
    ids = [int(v) for v in args.ids.split(",")]
    signs, reference = _floats(args.signs), _floats(args.reference)
    if not len(names) == len(ids) == len(signs) == len(reference):
        parser.error("--ids, --names, --signs and --reference need one entry per joint")
    bus = DynamixelBus(args.port, args.baudrate, label="leader arm")
    bus.open()
    try:
        for dxl_id in ids + ([args.gripper_id] if args.gripper_id is not None else []):
            bus.write1(dxl_id, ADDR_TORQUE_ENABLE, 0)
        input(f"Hold the leader in the reference pose {reference} and press Enter ")
        calibration = record_calibration(
            bus, list(zip(names, ids, signs)), dict(zip(names, reference))
        )
        if args.gripper_id is not None:
            gripper_ids = [args.gripper_id]
            input("Open the leader's gripper fully and press Enter ")
            open_ticks = bus.sync_read(ADDR_PRESENT_POSITION, 4, gripper_ids)[args.gripper_id]
            input("Close the leader's gripper fully and press Enter ")
            closed_ticks = bus.sync_read(ADDR_PRESENT_POSITION, 4, gripper_ids)[args.gripper_id]
            if open_ticks == closed_ticks:
                raise ValueError(
                    f"the gripper read {open_ticks} ticks open and closed: did it move?"
                )
            calibration = LeaderCalibration(
                joints=calibration.joints,
                gripper=LeaderGripper(args.gripper_id, open_ticks, closed_ticks),
                port=calibration.port,
                baudrate=calibration.baudrate,
            )
    finally:
        bus.close()
    calibration.save(args.out)
    LOG.info(
        "wrote %s; check it: python -m drivers.teleop.leader show --calibration %s", *[args.out] * 2
    )


__all__ = [
    "DynamixelBus",
    "LeaderArmError",
    "LeaderArmTeleop",
    "LeaderCalibration",
    "LeaderGripper",
    "LeaderJoint",
    "calibration_from_reference",
    "rad_to_ticks",
    "record_calibration",
    "ticks_to_rad",
]


if __name__ == "__main__":
    main()
