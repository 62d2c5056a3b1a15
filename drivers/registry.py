"""Robots and teleop devices by name: ``--robot sim:lift``, ``--robot ur5e``, ``--teleop scripted``.

Why: every command that drives a robot resolves it here, so adding a driver is one ``register``
call and unknown names fail with the list of valid ones. Hardware entries are lazy
(``"module:attr"``) and need their vendor package; when it is missing, :func:`make_robot` raises
:class:`DriverUnavailableError` saying which package to install instead of an import traceback.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from drivers.interfaces import Robot, TeleopDevice
from robot_learning.registry import Registry, UnknownNameError
from robot_learning.sim.tasks import TASKS

LOG = logging.getLogger(__name__)

SIM_PREFIX = "sim:"

ROBOTS: Registry[Robot] = Registry("robot")
TELEOPS: Registry[TeleopDevice] = Registry("teleop")


class DriverUnavailableError(RuntimeError):
    """A registered driver cannot be used here (its vendor package is not installed)."""


# name -> (pip package the driver needs, human-readable device)
_REQUIREMENTS: dict[str, tuple[str, str]] = {
    "ur5e": ("ur-rtde", "UR5e hardware driver"),
    "spacemouse": ("pyspacemouse", "SpaceMouse teleop"),
    "gamepad": ("pygame", "gamepad teleop"),
    "leader": ("dynamixel-sdk", "Dynamixel leader-arm teleop"),
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


def make_robot(name: str, **kwargs: Any) -> Robot:
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


def make_teleop(name: str, **kwargs: Any) -> TeleopDevice:
    """Build the teleop device called ``name`` (e.g. ``scripted``, which takes ``robot=``)."""
    return _resolve(TELEOPS, name)(**kwargs)


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
    "ROBOTS",
    "SIM_PREFIX",
    "TELEOPS",
    "DriverUnavailableError",
    "make_robot",
    "make_teleop",
    "sim_robot_names",
]
