"""Devices by name: robots (``--robot sim:lift``), teleop devices, cameras, arms, tactile sensors.

Why: every command that drives a robot resolves it here, so adding a driver is one ``register``
call and unknown names fail with the list of valid ones. Hardware entries are lazy
(``"module:attr"``) and need their vendor package; when it is missing, :func:`make_robot` raises
:class:`DriverUnavailableError` saying which package to install instead of an import traceback.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from drivers.interfaces import Arm, Camera, Robot, TactileSensor, TeleopDevice
from robot_learning.registry import Registry, UnknownNameError
from robot_learning.sim.tasks import TASKS

LOG = logging.getLogger(__name__)

SIM_PREFIX = "sim:"

ROBOTS: Registry[Robot] = Registry("robot")
TELEOPS: Registry[TeleopDevice] = Registry("teleop")
CAMERAS: Registry[Camera] = Registry("camera")
ARMS: Registry[Arm] = Registry("arm")
TACTILE_SENSORS: Registry[TactileSensor] = Registry("tactile sensor")


class DriverUnavailableError(RuntimeError):
    """A registered driver cannot be used here (its vendor package is not installed)."""


# name -> (pip package the driver needs, human-readable device)
_REQUIREMENTS: dict[str, tuple[str, str]] = {
    "ur5e": ("ur-rtde", "UR5e hardware driver"),
    "spacemouse": ("pyspacemouse", "SpaceMouse teleop"),
    "gamepad": ("pygame", "gamepad teleop"),
    "leader": ("dynamixel-sdk", "Dynamixel leader-arm teleop"),
    "realsense": ("pyrealsense2", "Intel RealSense camera driver"),
    "opencv": ("opencv-python-headless", "OpenCV/UVC camera driver"),
    "ur": ("ur-rtde", "Universal Robots arm driver"),
    "dynamixel": ("dynamixel-sdk", "Dynamixel arm driver"),
    "gelsight_mini": ("opencv-python-headless", "GelSight Mini tactile driver"),
    "digit": ("opencv-python-headless", "DIGIT tactile driver"),
    "anyskin": ("pyserial", "AnySkin/ReSkin magnetometer skin driver"),
}


def _make_sim_robot(task: str, **kwargs: Any) -> Robot:
    from drivers.robots.sim import SimRobot

    return SimRobot(task=task, **kwargs)


def sim_robot_names() -> list[str]:
    return [f"{SIM_PREFIX}{task}" for task in TASKS.names()]


for _task in TASKS.names():
    ROBOTS.register(
        f"{SIM_PREFIX}{_task}",
        functools.partial(_make_sim_robot, _task),
        f"MuJoCo UR5e + 2F-85: {TASKS.describe()[_task]}",
    )
ROBOTS.register(
    "ur5e",
    "drivers.robots.ur5e_rtde:UR5eRobot",
    "Universal Robots UR5e over RTDE (needs the ur-rtde package)",
)
TELEOPS.register(
    "scripted",
    "drivers.teleop.scripted:ScriptedTeleop",
    "sim scripted expert (reads privileged sim state; sim robots only)",
)
TELEOPS.register(
    "policy",
    "drivers.teleop.policy:PolicyTeleop",
    "a policy checkpoint drives the robot (path=DIR): teacher rollouts, DAgger-style data",
)
TELEOPS.register(
    "keyboard",
    "drivers.teleop.keyboard:KeyboardTeleop",
    "terminal keys: i/k j/l u/o move, I/K J/L U/O rotate, space gripper (ee-delta robots)",
)
TELEOPS.register(
    "spacemouse",
    "drivers.teleop.spacemouse:SpaceMouseTeleop",
    "3Dconnexion SpaceMouse via pyspacemouse/hidapi (ee-delta robots)",
)
TELEOPS.register(
    "gamepad",
    "drivers.teleop.gamepad:GamepadTeleop",
    "Xbox/PlayStation-style gamepad via pygame (ee-delta robots)",
)
TELEOPS.register(
    "leader",
    "drivers.teleop.leader:LeaderArmTeleop",
    "Dynamixel leader arm, GELLO/ALOHA style; needs calibration= (joint-mode robots)",
)

CAMERAS.register(
    "realsense",
    "drivers.cameras.realsense:RealSenseCamera",
    "Intel RealSense D4xx via pyrealsense2: colour + aligned depth, hardware timestamps",
)
CAMERAS.register(
    "opencv",
    "drivers.cameras.opencv:OpenCVCamera",
    "any UVC webcam or video file via OpenCV (cv2.VideoCapture)",
)
ARMS.register("sim", "drivers.arms.sim:SimArm", "the MuJoCo UR5e in joint-position mode")
ARMS.register(
    "ur",
    "drivers.arms.ur:URArm",
    "Universal Robots e-Series via ur-rtde: servoJ streaming with waypoint interpolation",
)
ARMS.register(
    "dynamixel",
    "drivers.arms.dynamixel:DynamixelArm",
    "Dynamixel protocol 2.0 follower arm (Koch, SO-100, ALOHA style) via dynamixel-sdk",
)
TACTILE_SENSORS.register(
    "sim", "drivers.tactile.sim:SimTactile", "fingertip taxel grids from MuJoCo contacts"
)
TACTILE_SENSORS.register(
    "gelsight_mini",
    "drivers.tactile.uvc:GelSightMini",
    "GelSight Mini (UVC): crop, resize, reference frame and difference image",
)
TACTILE_SENSORS.register(
    "digit",
    "drivers.tactile.uvc:Digit",
    "DIGIT (UVC): crop, resize, reference frame and difference",
)
TACTILE_SENSORS.register(
    "anyskin",
    "drivers.tactile.anyskin:AnySkin",
    "AnySkin/ReSkin magnetometer skin over a serial stream, with re-zero",
)


def make_robot(name: str, /, **kwargs: Any) -> Robot:
    """Build the robot called ``name`` (``sim:<task>`` or a hardware name) with ``kwargs``."""
    if name.startswith(SIM_PREFIX):
        task = name[len(SIM_PREFIX) :]
        if task not in TASKS:
            raise UnknownNameError(
                f"unknown sim task {task!r} in robot name {name!r}; valid sim robots: "
                f"{', '.join(sim_robot_names())}"
            )
        return _make_sim_robot(task, **kwargs)
    return _resolve(ROBOTS, name)(**kwargs)


def make_teleop(name: str, /, **kwargs: Any) -> TeleopDevice:
    """Build the teleop device called ``name`` (e.g. ``scripted``, which takes ``robot=``)."""
    return _resolve(TELEOPS, name)(**kwargs)


def make_camera(name: str, /, **kwargs: Any) -> Camera:
    """Build the camera driver called ``name`` (``realsense``, ``opencv``)."""
    return _resolve(CAMERAS, name)(**kwargs)


def make_arm(name: str, /, **kwargs: Any) -> Arm:
    """Build the arm driver called ``name`` (``sim``, ``ur``, ``dynamixel``)."""
    return _resolve(ARMS, name)(**kwargs)


def make_tactile(name: str, /, **kwargs: Any) -> TactileSensor:
    """Build the tactile driver called ``name`` (``sim``, ``gelsight_mini``, ``digit``, ...)."""
    return _resolve(TACTILE_SENSORS, name)(**kwargs)


def _resolve(registry: Registry[Any], name: str) -> Any:
    """``registry.get(name)``, turning a missing vendor package into a clear error."""
    try:
        return registry.get(name)
    except ImportError as exc:
        if name not in _REQUIREMENTS:
            raise
        package, what = _REQUIREMENTS[name]
        LOG.debug("import for %s %r failed: %s", registry.kind, name, exc)
        # the driver module itself may be absent from this installation, or only its vendor SDK
        hint = "" if (exc.name or "").startswith("drivers.") else f" (pip install {package})"
        raise DriverUnavailableError(
            f"{registry.kind} {name!r}: the {what} needs the {package!r} package and is not "
            f"available in this installation{hint}"
        ) from exc


__all__ = [
    "ARMS",
    "CAMERAS",
    "ROBOTS",
    "SIM_PREFIX",
    "TACTILE_SENSORS",
    "TELEOPS",
    "DriverUnavailableError",
    "make_arm",
    "make_camera",
    "make_robot",
    "make_tactile",
    "make_teleop",
    "sim_robot_names",
]
