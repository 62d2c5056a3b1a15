"""``SimArm``: the MuJoCo UR5e in joint-position mode, behind the :class:`Arm` interface.

Why: arm-level consumers (the UR servo loop, safety layers, ROS 2 joint nodes) need an arm they
can drive without hardware. Each ``send_joint_targets`` steps the sim one control period, so the
caller's loop rate is the sim's clock; every reading is stamped with sim time (seconds).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from drivers.arms.servo_interpolation import check_joint_vector
from drivers.interfaces import Arm, JointState
from drivers.robots.sim import SimRobot
from robot_learning.sim.robot_model import ARM_JOINTS
from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning.types import Action

LOG = logging.getLogger(__name__)

JOINT_FEATURE = "joint_pos"


class SimArm(Arm):
    """A simulated UR5e + 2F-85 (one task scene) commanded by absolute joint targets.

    ``robot`` wraps an existing :class:`SimRobot` (which must use ``control_mode='joint'``);
    otherwise one is built from ``task`` and ``env_overrides`` (EnvConfig fields; tactile
    sensing is off unless asked for, since an arm has no use for it). The gripper is an extra:
    :meth:`send_gripper` latches a closure 0 (open) .. 1 (closed) applied with every step.
    """

    def __init__(
        self, task: str = "lift", robot: SimRobot | None = None, **env_overrides: Any
    ) -> None:
        super().__init__()
        if robot is None:
            overrides = {"control_mode": "joint", "tactile": False, **env_overrides}
            robot = SimRobot(task=task, **overrides)
            self._owns_robot = True
        else:
            if env_overrides:
                raise ValueError(
                    f"env overrides {sorted(env_overrides)} cannot apply to an existing robot; "
                    "configure the SimRobot instead"
                )
            self._owns_robot = False
        if robot.config.control_mode != "joint":
            raise ValueError(
                f"SimArm needs a SimRobot with control_mode='joint', got "
                f"{robot.config.control_mode!r}"
            )
        self._robot = robot
        self._gripper = 0.0
        self._low = np.full(len(ARM_JOINTS), -np.inf)
        self._high = np.full(len(ARM_JOINTS), np.inf)

    @property
    def device_name(self) -> str:
        return f"SimArm(sim:{self._robot.task})"

    @property
    def robot(self) -> SimRobot:
        """The wrapped sim robot, for sim-only consumers (scripted experts, rendering)."""
        return self._robot

    def _connect(self) -> None:
        self._robot.connect()
        low, high = self._robot.action_spec()["action"].bounds()
        self._low, self._high = low[: len(ARM_JOINTS)], high[: len(ARM_JOINTS)]
        grip = self._robot.get_observation().values.get("gripper_pos")
        self._gripper = float(grip[0]) if grip is not None else 0.0

    def _disconnect(self) -> None:
        if self._owns_robot:
            self._robot.disconnect()

    # ---- specs ---------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return ARM_JOINTS

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) joint position limits in rad, read from the model on connect."""
        self.require_connected("joint_limits")
        return self._low.copy(), self._high.copy()

    def observation_spec(self) -> SpecDict:
        n = len(ARM_JOINTS)
        return SpecDict(
            {
                "joint_pos": FeatureSpec((n,), "float32", "lowdim", names=ARM_JOINTS),
                "joint_vel": FeatureSpec((n,), "float32", "lowdim", names=ARM_JOINTS),
                "gripper_pos": FeatureSpec((1,), "float32", "lowdim", low=0.0, high=1.0),
            }
        )

    def action_spec(self) -> SpecDict:
        self.require_connected("action_spec")
        return SpecDict(
            {
                JOINT_FEATURE: FeatureSpec(
                    (len(ARM_JOINTS),),
                    "float32",
                    "lowdim",
                    low=tuple(self._low.tolist()),
                    high=tuple(self._high.tolist()),
                    names=ARM_JOINTS,
                    description="absolute joint position targets, rad",
                )
            }
        )

    # ---- I/O -----------------------------------------------------------------------------------
    def read_joint_state(self) -> JointState:
        self.require_connected("read_joint_state")
        obs = self._robot.get_observation()
        return JointState(
            names=ARM_JOINTS,
            position=np.asarray(obs.values["joint_pos"], dtype=np.float64),
            velocity=np.asarray(obs.values["joint_vel"], dtype=np.float64),
            timestamp=obs.timestamps["joint_pos"],
        )

    def send_joint_targets(self, positions: np.ndarray, t_exec: float | None = None) -> np.ndarray:
        """Clamp to the joint limits and step the sim one control period (``t_exec`` unused)."""
        self.require_connected("send_joint_targets")
        q = check_joint_vector(positions, ARM_JOINTS, "joint targets")
        clamped = np.clip(q, self._low, self._high)
        if np.any(clamped != q):
            LOG.debug("%s: targets clamped to joint limits", self.device_name)
        self._step(clamped)
        return clamped

    def send_gripper(self, value: float) -> float:
        """Latch the gripper closure (0 open .. 1 closed, clipped); applied from the next step."""
        self.require_connected("send_gripper")
        if not np.isfinite(value):
            raise ValueError(f"gripper command must be finite in 0..1, got {value}")
        self._gripper = float(np.clip(value, 0.0, 1.0))
        return self._gripper

    @property
    def gripper(self) -> float:
        """The latched gripper closure command (0 open .. 1 closed)."""
        return self._gripper

    def hold(self) -> None:
        """Step the sim one control period keeping the current commanded joint targets."""
        self.require_connected("hold")
        self._step(np.asarray(self._robot.env.controller.q_cmd, dtype=np.float64))

    def _step(self, q: np.ndarray) -> None:
        action = np.array([*q, self._gripper], dtype=np.float32)
        self._robot.send_action(Action(values={"action": action}, t_exec=self._robot.sim_time))


__all__ = ["JOINT_FEATURE", "SimArm"]
