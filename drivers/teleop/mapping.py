"""Device readings -> robot actions: the pure mapping shared by the teleop devices.

Why pure functions: the SpaceMouse, gamepad and keyboard mappings (deadband, scaling, axis signs,
buttons -> gripper and session events) are where teleop bugs live, and none of that hardware is
on a CI machine. Keeping the mapping free of device I/O lets tests pin it down exactly; the device
classes only read hardware and call these.

Units: devices produce a *command* in [-1, 1] per Cartesian axis (dx, dy, dz, drx, dry, drz),
scaled by a ``speed`` fraction; :class:`EeDeltaLayout` turns that into the robot's per-step
bounds (metres and radians per control step, from the robot's action spec), so full deflection
at ``speed=1`` is the largest step the robot accepts. Elements are found by name, never index.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from drivers.interfaces import DeviceNotConnectedError, Robot, TeleopDevice, TeleopEvent
from robot_learning.specs import SpecDict, SpecError
from robot_learning.types import Action, Observation

EE_DELTA_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "drx", "dry", "drz")
GRIPPER_NAME = "gripper"
SPEED_STEP = 1.5  # factor per speed-up / slow-down press
SPEED_MIN, SPEED_MAX = 0.05, 1.0


# ---- the robot's action spec --------------------------------------------------------------------
@dataclass(frozen=True)
class EeDeltaLayout:
    """Where dx..drz and the gripper sit in a robot's action spec, with their per-step bounds."""

    feature: str
    shape: tuple[int, ...]
    dtype: str
    axis_index: tuple[int, ...]  # index of dx, dy, dz, drx, dry, drz in the feature
    gripper_index: int | None
    low: np.ndarray  # bounds of the whole feature
    high: np.ndarray

    def values(self, command: np.ndarray, gripper: float) -> dict[str, np.ndarray]:
        """The action values for a command in [-1, 1]^6 (already speed-scaled) and a gripper.

        Positive commands scale the upper bound and negative ones the lower bound, so asymmetric
        bounds are honoured; the result is clipped to the spec's bounds.
        """
        command = np.clip(np.asarray(command, dtype=np.float64), -1.0, 1.0)
        out = np.zeros(len(self.low))
        idx = np.asarray(self.axis_index)
        out[idx] = np.where(command >= 0, command * self.high[idx], -command * self.low[idx])
        if self.gripper_index is not None:
            out[self.gripper_index] = gripper
        out = np.clip(out, self.low, self.high)
        return {self.feature: out.reshape(self.shape).astype(self.dtype)}


def ee_delta_layout(spec: SpecDict, device: str) -> EeDeltaLayout:
    """Locate the Cartesian-delta feature in ``spec`` or say why this device cannot drive it."""
    found = []
    for name, feature in spec.items():
        names = feature.names or ()
        if all(n in names for n in EE_DELTA_NAMES):
            found.append(name)
    if len(found) != 1 or len(spec) != 1:
        described = "; ".join(
            f"{name!r} {feature.shape} names={list(feature.names) if feature.names else 'unnamed'}"
            for name, feature in spec.items()
        )
        raise SpecError(
            f"{device} produces end-effector deltas (one action feature with elements named "
            f"{', '.join(EE_DELTA_NAMES)} and optionally {GRIPPER_NAME!r}), but the robot's "
            f"action spec is: {described}. Run the robot in end-effector delta control (sim "
            "robots: control_mode='ee_delta', the default), or use a leader arm for joint targets"
        )
    feature_name = found[0]
    feature = spec[feature_name]
    names = tuple(feature.names or ())
    extra = [n for n in names if n not in EE_DELTA_NAMES and n != GRIPPER_NAME]
    if extra:
        raise SpecError(
            f"{device} cannot fill action elements {extra} of feature {feature_name!r}; it "
            f"produces only {', '.join((*EE_DELTA_NAMES, GRIPPER_NAME))}"
        )
    low, high = feature.bounds()
    flat_low, flat_high = low.reshape(-1), high.reshape(-1)
    axis = tuple(names.index(n) for n in EE_DELTA_NAMES)
    if not (
        np.all(np.isfinite(flat_low[list(axis)])) and np.all(np.isfinite(flat_high[list(axis)]))
    ):
        raise SpecError(
            f"{device} scales its commands to the per-step bounds of {feature_name!r}, but the "
            "spec leaves some of dx..drz unbounded; give the feature low/high bounds"
        )
    return EeDeltaLayout(
        feature=feature_name,
        shape=feature.shape,
        dtype=feature.dtype,
        axis_index=axis,
        gripper_index=names.index(GRIPPER_NAME) if GRIPPER_NAME in names else None,
        low=flat_low,
        high=flat_high,
    )


@dataclass(frozen=True)
class JointTargetLayout:
    """Which named source (leader joint, gripper) fills each element of each action feature."""

    elements: dict[str, tuple[str, ...]]  # feature -> element names, in spec order
    dtypes: dict[str, str]
    bounds: dict[str, tuple[np.ndarray, np.ndarray]]

    def values(self, targets: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Action values from ``{element name: value}``, clipped to the spec's bounds."""
        out: dict[str, np.ndarray] = {}
        for feature, names in self.elements.items():
            low, high = self.bounds[feature]
            arr = np.array([targets[n] for n in names], dtype=np.float64)
            out[feature] = np.clip(arr, low, high).astype(self.dtypes[feature])
        return out


def joint_target_layout(spec: SpecDict, sources: Sequence[str], device: str) -> JointTargetLayout:
    """Map every action element to a source by name, or say what is missing and what is valid."""
    for name, feature in spec.items():
        if all(n in (feature.names or ()) for n in EE_DELTA_NAMES):
            raise SpecError(
                f"{device} produces joint targets for {list(sources)}, but the robot's action "
                f"feature {name!r} wants end-effector deltas ({', '.join(EE_DELTA_NAMES)}). Run "
                "the robot in joint control mode (sim robots: control_mode='joint')"
            )
    elements: dict[str, tuple[str, ...]] = {}
    missing: list[str] = []
    for name, feature in spec.items():
        if feature.names is None or len(feature.shape) != 1:
            raise SpecError(
                f"{device} maps joints by name, but action feature {name!r} {feature.shape} has "
                "no element names; the robot's spec must name its joints"
            )
        elements[name] = tuple(feature.names)
        missing += [n for n in feature.names if n not in sources]
    used = {n for names in elements.values() for n in names}
    unused = [s for s in sources if s not in used]
    if missing or unused:
        wanted = sorted(used)
        raise SpecError(
            f"{device} cannot fill the robot's action by name: the robot wants {wanted}; "
            f"missing from the leader calibration: {missing}; calibration entries the robot does "
            f"not have: {unused}. Rename the calibration joints to the robot's joint names"
        )
    return JointTargetLayout(
        elements=elements,
        dtypes={name: feature.dtype for name, feature in spec.items()},
        bounds={name: feature.bounds() for name, feature in spec.items()},
    )


def resolve_action_spec(
    robot: Robot | None, action_spec: SpecDict | None, device: str
) -> SpecDict | None:
    """The spec to produce now, or None when it must wait for the robot to connect."""
    if action_spec is not None:
        return action_spec
    if robot is None:
        raise ValueError(f"{device} needs robot= (or action_spec=) to know which actions to make")
    return robot.action_spec() if robot.is_connected else None


def require_action_spec(robot: Robot | None, action_spec: SpecDict | None, device: str) -> SpecDict:
    """Like :func:`resolve_action_spec`, at connect time: the robot must be connected by now."""
    spec = resolve_action_spec(robot, action_spec, device)
    if spec is None:
        assert robot is not None
        raise DeviceNotConnectedError(
            f"{device} reads its action spec from the robot: connect {robot.device_name} before "
            "the teleop device (e.g. 'with robot, teleop:')"
        )
    return spec


def action_time(observation: Observation | None) -> float:
    """When an action made now should run: the latest observation stamp (the robot's clock)."""
    if observation is not None and observation.timestamps:
        return max(observation.timestamps.values())
    return time.time()


# ---- shaping ------------------------------------------------------------------------------------
def apply_deadband(values: Sequence[float] | np.ndarray, width: float) -> np.ndarray:
    """Zero inputs within ``width`` of rest and rescale the rest so the output stays continuous."""
    if not 0.0 <= width < 1.0:
        raise ValueError(f"deadband must be in [0, 1), got {width}")
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    return np.sign(v) * np.maximum(np.abs(v) - width, 0.0) / (1.0 - width)


def adjust_speed(speed: float, faster: bool) -> float:
    """One speed-up or slow-down press, kept within [SPEED_MIN, SPEED_MAX]."""
    scaled = speed * SPEED_STEP if faster else speed / SPEED_STEP
    return float(np.clip(scaled, SPEED_MIN, SPEED_MAX))


def check_speed(speed: float) -> float:
    if not SPEED_MIN <= speed <= SPEED_MAX:
        raise ValueError(f"speed must be in [{SPEED_MIN}, {SPEED_MAX}], got {speed}")
    return float(speed)


def pressed(buttons: Sequence[int], previous: Sequence[int]) -> set[int]:
    """Indices of buttons that went down since ``previous`` (rising edges)."""
    return {i for i, down in enumerate(buttons) if down and not (i < len(previous) and previous[i])}


@dataclass(frozen=True)
class MappedInput:
    """One step of operator input, device-independent: what the base class turns into actions."""

    command: np.ndarray  # (6,) in [-1, 1], before speed scaling
    gripper: float  # 0 open .. 1 closed
    speed: float
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)


def map_buttons(
    down: set[int],
    gripper: float,
    speed: float,
    *,
    gripper_button: int | None,
    slower_button: int | None = None,
    faster_button: int | None = None,
    button_events: Mapping[int, TeleopEvent] | None = None,
) -> tuple[float, float, frozenset[TeleopEvent]]:
    """Apply button presses: toggle the gripper, change speed, raise session events."""
    if gripper_button is not None and gripper_button in down:
        gripper = 0.0 if gripper >= 0.5 else 1.0
    if slower_button is not None and slower_button in down:
        speed = adjust_speed(speed, faster=False)
    if faster_button is not None and faster_button in down:
        speed = adjust_speed(speed, faster=True)
    events = frozenset(e for b, e in (button_events or {}).items() if b in down)
    return gripper, speed, events


# ---- SpaceMouse ---------------------------------------------------------------------------------
SPACEMOUSE_AXES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")


@dataclass(frozen=True)
class SpaceMouseConfig:
    """How a SpaceMouse drives the tool.

    Axes arrive in pyspacemouse's ROS convention (x forward/away from the operator, y left, z up,
    roll/pitch/yaw about them). ``axis_source[k]`` is the SpaceMouse axis (index into
    ``SPACEMOUSE_AXES``) that drives output k of (dx, dy, dz, drx, dry, drz), ``signs[k]`` its
    sign: the defaults suit an operator standing behind the robot, facing where it faces.
    """

    deadband: float = 0.1
    axis_source: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    signs: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    gripper_button: int | None = 0  # left button toggles the gripper
    button_events: Mapping[int, TeleopEvent] = field(
        default_factory=lambda: {1: TeleopEvent.SAVE}  # right button ends and keeps the episode
    )

    def __post_init__(self) -> None:
        _check_axis_map(self.axis_source, self.signs, len(SPACEMOUSE_AXES))
        apply_deadband([0.0], self.deadband)


def _check_axis_map(source: Sequence[int], signs: Sequence[float], n_inputs: int) -> None:
    if len(source) != 6 or len(signs) != 6:
        raise ValueError("axis maps need 6 entries, one per dx, dy, dz, drx, dry, drz")
    if any(not -1 <= s < n_inputs for s in source):
        raise ValueError(f"axis sources must be -1 (unused) or 0..{n_inputs - 1}, got {source}")


def map_spacemouse(
    axes: Sequence[float],
    buttons: Sequence[int],
    previous_buttons: Sequence[int],
    gripper: float,
    speed: float,
    config: SpaceMouseConfig,
) -> MappedInput:
    """A SpaceMouse reading (x, y, z, roll, pitch, yaw in [-1, 1] + buttons) -> one step."""
    if len(axes) != len(SPACEMOUSE_AXES):
        raise ValueError(f"a SpaceMouse reading has 6 axes {SPACEMOUSE_AXES}, got {len(axes)}")
    shaped = apply_deadband(axes, config.deadband)
    command = np.array(
        [shaped[s] * sign if s >= 0 else 0.0 for s, sign in zip(config.axis_source, config.signs)]
    )
    gripper, speed, events = map_buttons(
        pressed(buttons, previous_buttons),
        gripper,
        speed,
        gripper_button=config.gripper_button,
        button_events=config.button_events,
    )
    return MappedInput(np.clip(command, -1.0, 1.0), gripper, speed, events)


# ---- gamepad ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AxisBinding:
    """One gamepad input driving one Cartesian output: ``kind`` is "axis" or "hat_x"/"hat_y"."""

    kind: str
    index: int
    sign: float = 1.0

    def read(self, axes: Sequence[float], hats: Sequence[tuple[float, float]]) -> float:
        if self.kind == "axis":
            return float(axes[self.index]) if self.index < len(axes) else 0.0
        if self.kind in ("hat_x", "hat_y"):
            if self.index >= len(hats):
                return 0.0
            return float(hats[self.index][0 if self.kind == "hat_x" else 1])
        raise ValueError(f"unknown binding kind {self.kind!r}; valid: axis, hat_x, hat_y")


@dataclass(frozen=True)
class GamepadConfig:
    """How a gamepad drives the tool; defaults are an Xbox-style pad under SDL2 on Linux.

    Left stick: forward/back (x) and left/right (y). Right stick: up/down (z) and yaw (rz).
    D-pad: left/right roll (rx), up/down pitch (ry). A toggles the gripper, LB/RB slow down /
    speed up, Start saves the episode, Back discards it. Stick "up" reads negative in SDL, hence
    the signs. ``gripper_axis`` (e.g. 5, the right trigger) makes the gripper analog instead.
    """

    bindings: tuple[AxisBinding | None, ...] = (
        AxisBinding("axis", 1, -1.0),  # dx: left stick up = forward
        AxisBinding("axis", 0, -1.0),  # dy: left stick left = +y
        AxisBinding("axis", 4, -1.0),  # dz: right stick up = up
        AxisBinding("hat_x", 0, 1.0),  # drx
        AxisBinding("hat_y", 0, 1.0),  # dry
        AxisBinding("axis", 3, -1.0),  # drz: right stick left = counter-clockwise
    )
    deadband: float = 0.15
    gripper_button: int | None = 0  # A
    gripper_axis: int | None = None
    slower_button: int | None = 4  # LB
    faster_button: int | None = 5  # RB
    button_events: Mapping[int, TeleopEvent] = field(
        default_factory=lambda: {7: TeleopEvent.SAVE, 6: TeleopEvent.DISCARD}  # Start, Back
    )

    def __post_init__(self) -> None:
        if len(self.bindings) != 6:
            raise ValueError("gamepad bindings need 6 entries, one per dx, dy, dz, drx, dry, drz")
        apply_deadband([0.0], self.deadband)

    @property
    def max_axis(self) -> int:
        """The highest stick axis index used (to check a pad has enough axes)."""
        used = [b.index for b in self.bindings if b is not None and b.kind == "axis"]
        if self.gripper_axis is not None:
            used.append(self.gripper_axis)
        return max(used, default=-1)


def map_gamepad(
    axes: Sequence[float],
    buttons: Sequence[int],
    hats: Sequence[tuple[float, float]],
    previous_buttons: Sequence[int],
    gripper: float,
    speed: float,
    config: GamepadConfig,
) -> MappedInput:
    """A gamepad reading (SDL axes in [-1, 1], buttons, hats) -> one step."""
    raw = [b.read(axes, hats) * b.sign if b is not None else 0.0 for b in config.bindings]
    command = apply_deadband(raw, config.deadband)
    gripper, speed, events = map_buttons(
        pressed(buttons, previous_buttons),
        gripper,
        speed,
        gripper_button=config.gripper_button if config.gripper_axis is None else None,
        slower_button=config.slower_button,
        faster_button=config.faster_button,
        button_events=config.button_events,
    )
    if config.gripper_axis is not None and config.gripper_axis < len(axes):
        gripper = float(np.clip((axes[config.gripper_axis] + 1.0) / 2.0, 0.0, 1.0))  # -1 = rest
    return MappedInput(command, gripper, speed, events)


# ---- base class ---------------------------------------------------------------------------------
class EeDeltaTeleop(TeleopDevice):
    """Shared plumbing of devices that steer the tool with Cartesian deltas.

    Binds to the robot's action spec (now if the robot is connected, else at ``connect()``), keeps
    the gripper and speed state across steps, and queues session events for :meth:`events`.
    Subclasses implement ``_open`` / ``_close`` and ``_read() -> MappedInput``.
    """

    def __init__(
        self, robot: Robot | None = None, *, action_spec: SpecDict | None = None, speed: float
    ) -> None:
        super().__init__()
        self.robot = robot
        self._given_spec = action_spec
        self.speed = check_speed(speed)
        self.gripper = 0.0
        self._events: set[TeleopEvent] = set()
        spec = resolve_action_spec(robot, action_spec, self.device_name)
        self._spec: SpecDict | None = spec
        self._layout = ee_delta_layout(spec, self.device_name) if spec is not None else None

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        spec = require_action_spec(self.robot, self._given_spec, self.device_name)
        self._layout = ee_delta_layout(spec, self.device_name)
        self._spec = spec
        self._open()

    def _disconnect(self) -> None:
        self._close()

    def _open(self) -> None:
        """Open the hardware."""

    def _close(self) -> None:
        """Release the hardware."""

    def _read(self) -> MappedInput:
        raise NotImplementedError

    # ---- TeleopDevice --------------------------------------------------------------------------
    def action_spec(self) -> SpecDict:
        if self._spec is None:
            return require_action_spec(self.robot, self._given_spec, self.device_name)
        return self._spec

    def reset(self, seed: int | None = None) -> None:
        """Every episode starts with the gripper open (as the robot resets)."""
        self.require_connected("reset")
        self.gripper = 0.0

    def get_action(self, observation: Observation) -> Action:
        self.require_connected("get_action")
        assert self._layout is not None
        step = self._read()
        self.gripper, self.speed = step.gripper, step.speed
        self._events |= step.events
        values = self._layout.values(step.command * step.speed, step.gripper)
        return Action(
            values=values,
            t_exec=action_time(observation),
            info={"speed": step.speed, "gripper": step.gripper},
        )

    def events(self) -> set[TeleopEvent]:
        drained, self._events = self._events, set()
        return drained


__all__ = [
    "EE_DELTA_NAMES",
    "GRIPPER_NAME",
    "SPACEMOUSE_AXES",
    "AxisBinding",
    "EeDeltaLayout",
    "EeDeltaTeleop",
    "GamepadConfig",
    "JointTargetLayout",
    "MappedInput",
    "SpaceMouseConfig",
    "action_time",
    "adjust_speed",
    "apply_deadband",
    "ee_delta_layout",
    "joint_target_layout",
    "map_buttons",
    "map_gamepad",
    "map_spacemouse",
    "pressed",
    "require_action_spec",
    "resolve_action_spec",
]
