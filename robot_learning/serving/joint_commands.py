"""Policy actions -> joint position targets, for arms driven through ``JointTrajectory``.

Why: ROS 2 arms (ros2_control's ``joint_trajectory_controller``, our arm and sim nodes) take joint
targets, while many policies act in tcp-delta space. The mapping uses the same controller as the
simulator (commanded-pose integration, damped-least-squares IK on the UR5e model, pose-lead and
tracking-error bounds), so a policy behaves on the ROS 2 loop as it does in evaluation.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_learning.sim.control import ArmController, ControlMode
from robot_learning.sim.robot_model import ARM_JOINTS, build_robot_spec


class JointCommandMapper:
    """Turns ``[7]`` actions (tcp delta or joint targets, then gripper 0..1) into ``[7]`` targets.

    The output is six joint positions (``ARM_JOINTS`` order) followed by the gripper closure.
    """

    def __init__(self, mode: ControlMode) -> None:
        self.mode = mode
        self.model = build_robot_spec(low_poly=True).compile()
        self.data = mujoco.MjData(self.model)
        self.controller = ArmController(self.model, mode)
        self.joint_names = ARM_JOINTS

    def _set_joints(self, joint_pos: np.ndarray) -> None:
        self.data.qpos[self.controller.qpos_ids] = np.asarray(joint_pos, dtype=np.float64)
        mujoco.mj_kinematics(self.model, self.data)

    def reset(self, joint_pos: np.ndarray) -> None:
        """Start from the measured joints: the commanded pose becomes the measured tcp pose."""
        self._set_joints(joint_pos)
        self.controller.reset(self.data)

    def to_joint_targets(self, action: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
        """Joint targets for ``action`` given the measured ``joint_pos`` (six arm joints)."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,):
            raise ValueError(f"expected a [7] action (6 arm values + gripper), got {action.shape}")
        self._set_joints(joint_pos)
        self.controller.apply(self.data, action)
        return np.concatenate([self.controller.q_cmd, action[6:7]])
