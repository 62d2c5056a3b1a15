"""``SimTactile``: the sim gripper's fingertip taxel grids as a stand-alone tactile sensor.

Why: collection and policies that take a ``TactileSensor`` beside a robot (as with a GelSight or
AnySkin on a real gripper) run unchanged in simulation. The grids are already computed by the
sim env (``robot_learning.sim.tactile``: per-taxel [normal, shear_x, shear_z] force, N) and sit in
every observation of a :class:`~drivers.robots.sim.SimRobot`; this sensor reads them from the
robot it is given instead of building a second simulator, so they always match the arm's state.
Timestamps are the robot's sim time.
"""

from __future__ import annotations

import logging

import numpy as np

from drivers.interfaces import DeviceNotConnectedError, Robot, TactileSensor
from drivers.robots.sim import SimRobot
from robot_learning.specs import SpecDict
from robot_learning.types import Observation

LOG = logging.getLogger(__name__)

SIDES = ("left", "right")


class SimTactile(TactileSensor):
    """Features ``f"{name}_left"`` / ``f"{name}_right"``: (rows, cols, 3) float32, kind tactile.

    ``robot`` must be a :class:`SimRobot` built with ``tactile=True`` (the default) and connected
    before this sensor; disconnecting the sensor leaves the robot running.
    """

    def __init__(self, robot: Robot, name: str = "tactile") -> None:
        super().__init__()
        if not isinstance(robot, SimRobot):
            raise TypeError(
                "the sim tactile sensor reads the fingertip grids of a simulated gripper, so it "
                f"needs a sim robot (--robot sim:<task>); got {robot.device_name}"
            )
        if not name:
            raise ValueError("name must be a non-empty feature prefix")
        self.robot = robot
        self.name = name

    @property
    def device_name(self) -> str:
        return f"SimTactile({self.robot.device_name})"

    def _source_keys(self) -> dict[str, str]:
        """Robot observation key -> this sensor's feature name."""
        return {f"tactile_{side}": f"{self.name}_{side}" for side in SIDES}

    def _connect(self) -> None:
        if not self.robot.is_connected:
            raise DeviceNotConnectedError(
                f"{self.device_name} reads the grids of {self.robot.device_name}: connect the "
                "robot before the tactile sensor (e.g. 'with robot, tactile:')"
            )
        spec = self.robot.observation_spec()
        missing = [k for k in self._source_keys() if k not in spec]
        if missing:
            raise ValueError(
                f"{self.robot.device_name} has no fingertip grids ({missing} missing): build it "
                "with tactile=True (EnvConfig.tactile)"
            )

    def _disconnect(self) -> None:
        """Nothing to release: the robot (and its sim) belongs to the caller."""

    def observation_spec(self) -> SpecDict:
        self.require_connected("observation_spec")
        spec = self.robot.observation_spec()
        return SpecDict({ours: spec[theirs] for theirs, ours in self._source_keys().items()})

    def read(self) -> Observation:
        """The grids sensed with the robot's latest observation, stamped with its sim time."""
        self.require_connected("read")
        obs = self.robot.get_observation()
        values: dict[str, np.ndarray] = {}
        stamps: dict[str, float] = {}
        for theirs, ours in self._source_keys().items():
            values[ours] = np.array(obs.values[theirs], dtype=np.float32, copy=True)
            stamps[ours] = obs.timestamps[theirs]
        return Observation(values=values, timestamps=stamps)


__all__ = ["SimTactile"]
