"""3Dconnexion SpaceMouse teleop through ``pyspacemouse`` (hidapi).

Why a SpaceMouse: six axes at once make it the most common device for recording end-effector
demonstrations (robosuite, Diffusion Policy). Pushing the cap moves the tool, twisting rotates it;
the left button toggles the gripper and the right one saves the episode (see
:class:`~drivers.teleop.mapping.SpaceMouseConfig` to change any of it). The reading -> action
mapping is :func:`~drivers.teleop.mapping.map_spacemouse`, a pure function tested without a
device; this module only opens the HID device and reads it.

Linux needs the hidapi library (``apt-get install libhidapi-hidraw0``) and read access to the
``/dev/hidraw*`` node (a udev rule, see docs/teleop.md).
"""

from __future__ import annotations

import logging
from typing import Any

import pyspacemouse

from drivers.interfaces import DeviceNotConnectedError, Robot
from drivers.teleop.mapping import EeDeltaTeleop, MappedInput, SpaceMouseConfig, map_spacemouse
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)

NOT_FOUND_HINT = (
    "is it plugged in and is the udev rule installed? (docs/teleop.md: a rule giving your user "
    "read access to /dev/hidraw* for vendor 256f/046d, then replug)"
)
HIDAPI_HINT = "the hidapi system library is missing: apt-get install libhidapi-hidraw0"
READS_PER_STEP = 32  # HID reports queue up between control steps; drain them to stay current


class SpaceMouseTeleop(EeDeltaTeleop):
    """Tool deltas from a SpaceMouse.

    ``speed``: fraction of the robot's per-step bound at full deflection. ``deadband``: the
    fraction of travel around rest that reads as zero (overrides ``config.deadband``).
    ``path``: a ``/dev/hidraw*`` node when several devices are connected.
    """

    def __init__(
        self,
        robot: Robot | None = None,
        *,
        speed: float = 0.5,
        deadband: float | None = None,
        path: str | None = None,
        config: SpaceMouseConfig | None = None,
        action_spec: SpecDict | None = None,
    ) -> None:
        super().__init__(robot, action_spec=action_spec, speed=speed)
        config = config or SpaceMouseConfig()
        if deadband is not None:
            config = SpaceMouseConfig(
                deadband=deadband,
                axis_source=config.axis_source,
                signs=config.signs,
                gripper_button=config.gripper_button,
                button_events=config.button_events,
            )
        self.config = config
        self.path = path
        self._device: Any = None
        self._buttons: list[int] = []

    def _open(self) -> None:
        convention = pyspacemouse.AxisConvention.ROS
        try:
            if self.path is not None:
                device = pyspacemouse.open_by_path(self.path, axis_convention=convention)
            else:
                device = pyspacemouse.open(axis_convention=convention)
        except (RuntimeError, OSError, ValueError) as exc:
            hint = HIDAPI_HINT if "HID API" in str(exc) else NOT_FOUND_HINT
            where = f" at {self.path}" if self.path else ""
            raise DeviceNotConnectedError(f"no SpaceMouse found{where} ({exc}); {hint}") from exc
        self._device = device
        self._buttons = list(device.read().buttons)
        LOG.info("SpaceMouse connected: %s", device.describe_connection())

    def _close(self) -> None:
        if self._device is not None:
            try:
                self._device.close()
            finally:
                self._device = None

    def _read(self) -> MappedInput:
        try:
            for _ in range(READS_PER_STEP):
                state = self._device.read()
        except Exception as exc:  # easyhid raises its own HIDException when the device goes
            raise DeviceNotConnectedError(
                f"the SpaceMouse stopped responding ({exc}); was it unplugged?"
            ) from exc
        axes = (state.x, state.y, state.z, state.roll, state.pitch, state.yaw)
        buttons = list(state.buttons)
        step = map_spacemouse(axes, buttons, self._buttons, self.gripper, self.speed, self.config)
        self._buttons = buttons
        return step


__all__ = ["SpaceMouseConfig", "SpaceMouseTeleop"]
