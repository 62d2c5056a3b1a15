"""Hardware-facing interfaces: every robot, camera, tactile sensor, arm and teleop device.

Collection, evaluation, serving and the ROS 2 nodes program against these ABCs only, so the
MuJoCo sim backend, protocol emulators and real hardware are interchangeable behind one name
(``--robot sim:lift``, ``--robot ur5e``). All devices share one lifecycle:

* ``connect()`` opens the device (idempotent), ``disconnect()`` releases it (idempotent, safe
  after a failed connect), and a ``with`` block does both.
* Using a device before ``connect()`` raises :class:`DeviceNotConnectedError` naming the call,
  instead of failing deep inside a vendor library.
* Specs (:class:`~robot_learning.specs.SpecDict`) describe what a device produces or accepts.
  They may depend on what the device reports on connect (resolution, joint names), so callers
  read them after ``connect()``.

Subclasses implement ``_connect``/``_disconnect``; the base class keeps the connected flag so
every implementation gets the same errors and context-manager behaviour for free.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import numpy as np

from robot_learning.specs import SpecDict, SpecError
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)
_D = TypeVar("_D", bound="Device")


class DeviceNotConnectedError(RuntimeError):
    """A device method that needs an open connection was called before ``connect()``."""


class Device(ABC):
    """Connect/disconnect lifecycle and context manager shared by all devices."""

    def __init__(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def device_name(self) -> str:
        """Human-readable name used in errors and logs."""
        return type(self).__name__

    def connect(self) -> None:
        """Open the device; a second call is a no-op so shared devices can be connected twice."""
        if self._connected:
            LOG.debug("%s already connected", self.device_name)
            return
        self._connect()
        self._connected = True
        LOG.debug("%s connected", self.device_name)

    def disconnect(self) -> None:
        """Release the device; a no-op when not connected so cleanup paths can always call it."""
        if not self._connected:
            return
        try:
            self._disconnect()
        finally:
            self._connected = False
            LOG.debug("%s disconnected", self.device_name)

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection (start streams, build the sim, home the teleop device)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the connection and free resources."""

    def require_connected(self, what: str) -> None:
        """Raise :class:`DeviceNotConnectedError` naming ``what`` unless connected."""
        if not self._connected:
            raise DeviceNotConnectedError(
                f"{self.device_name}.{what}() needs a connected device: call connect() first "
                "or use it in a 'with' block"
            )

    def __enter__(self: _D) -> _D:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()


def clamp_action(spec: SpecDict, action: Action) -> Action:
    """Validate ``action`` against ``spec`` and clip every feature to its bounds.

    Why: every robot must reject malformed commands with a message naming the feature
    (``SpecError``) and report what it really executes after clamping.
    """
    spec.validate(action.values, what="action")
    values: dict[str, np.ndarray] = {}
    for name, feature in spec.items():
        arr = np.asarray(action.values[name])
        low, high = feature.bounds()
        values[name] = np.clip(arr, low, high).astype(feature.dtype)
    return Action(values=values, t_exec=action.t_exec, info=dict(action.info))


class Robot(Device):
    """A robot: observations in, actions out, as one spec-described unit (sim or hardware)."""

    @abstractmethod
    def observation_spec(self) -> SpecDict:
        """Every feature :meth:`get_observation` returns."""

    @abstractmethod
    def action_spec(self) -> SpecDict:
        """Every feature :meth:`send_action` accepts, with bounds used for clamping."""

    @abstractmethod
    def get_observation(self) -> Observation:
        """The latest observation, every feature stamped at its source (seconds)."""

    @abstractmethod
    def send_action(self, action: Action) -> Action:
        """Execute ``action``; return what was really executed after validation and clamping.

        Malformed actions (missing/extra features, wrong shape, NaN/Inf) raise ``SpecError``
        naming the feature and are not executed.
        """

    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode and return its first observation.

        Hardware cannot reset the world, so the default just returns the current observation;
        simulated robots override it to re-sample the scene (``seed`` makes it reproducible).
        """
        self.require_connected("reset")
        return self.get_observation()


class Camera(Device):
    """A colour camera (optionally with depth) producing timestamped frames."""

    @abstractmethod
    def observation_spec(self) -> SpecDict:
        """The frame feature(s) this camera produces (``rgb``, optionally ``depth``)."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, float]:
        """The latest colour frame (H, W, 3) uint8 and its capture time (sensor clock, s)."""

    @property
    def has_depth(self) -> bool:
        return False

    def read_depth(self) -> tuple[np.ndarray, float]:
        """The latest depth frame (H, W) uint16 millimetres and its capture time."""
        raise NotImplementedError(f"{self.device_name} has no depth stream")


class TactileSensor(Device):
    """A tactile pad or set of pads producing timestamped force/taxel readings."""

    @abstractmethod
    def observation_spec(self) -> SpecDict:
        """The tactile feature(s) this sensor produces (kind ``tactile``)."""

    @abstractmethod
    def read(self) -> Observation:
        """The latest reading of every pad, each stamped with its sample time."""


@dataclass
class JointState:
    """Joint readings mapped by name (never by index), stamped at the source."""

    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray | None = None
    effort: np.ndarray | None = None
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        for label in ("position", "velocity", "effort"):
            value = getattr(self, label)
            if value is not None and len(value) != len(self.names):
                raise ValueError(
                    f"joint state {label} has {len(value)} entries for {len(self.names)} joints"
                )


class Arm(Device):
    """A joint-position-controlled arm (the layer below a full :class:`Robot`)."""

    @property
    @abstractmethod
    def joint_names(self) -> tuple[str, ...]:
        """Names of the commanded joints, in the order of ``send_joint_targets``."""

    @abstractmethod
    def observation_spec(self) -> SpecDict:
        """Proprioceptive features (joint positions, velocities, ...)."""

    @abstractmethod
    def action_spec(self) -> SpecDict:
        """Joint target feature(s) with the limits used for clamping."""

    @abstractmethod
    def read_joint_state(self) -> JointState:
        """The latest joint state."""

    @abstractmethod
    def send_joint_targets(self, positions: np.ndarray, t_exec: float | None = None) -> np.ndarray:
        """Command joint position targets; return the targets really sent after clamping."""


class TeleopEvent(enum.Enum):
    """Operator keys that steer a recording session."""

    SAVE = "save"  # end the episode and keep it (on hardware: labelled a success)
    SAVE_FAILURE = "save_failure"  # end the episode and keep it, labelled a failure
    DISCARD = "discard"  # end the episode and drop it
    RERECORD = "rerecord"  # drop the episode and record it again (same episode index)
    STOP = "stop"  # end the session


class TeleopDevice(Device):
    """An operator (or a script standing in for one) that turns observations into actions."""

    @abstractmethod
    def action_spec(self) -> SpecDict:
        """The action features produced; must be compatible with the driven robot's spec."""

    @abstractmethod
    def get_action(self, observation: Observation) -> Action:
        """The operator's next action given the robot's latest observation."""

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of every episode; stateless devices need nothing."""
        self.require_connected("reset")

    def events(self) -> set[TeleopEvent]:
        """Operator events since the last call (drained); devices without keys report none."""
        return set()

    def check_robot(self, robot: Robot) -> None:
        """Raise ``SpecError`` if this device's actions do not fit ``robot``'s action spec."""
        robot.action_spec().check_compatible(self.action_spec(), what="teleop action spec")


__all__ = [
    "Arm",
    "Camera",
    "Device",
    "DeviceNotConnectedError",
    "JointState",
    "Robot",
    "SpecError",
    "TactileSensor",
    "TeleopDevice",
    "TeleopEvent",
    "clamp_action",
]
