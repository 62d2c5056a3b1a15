"""Arm controllers: turn a policy action into joint-position servo targets.

``ee_delta``: a Cartesian delta of the tool-centre point (metres, axis-angle radians) applied to
the commanded pose, solved to joint targets with damped-least-squares IK. ``joint``: absolute joint
position targets. Both end with the same guards: joint limits, and a bound on how far the target
may lead the measured joints, so no action can wind the servos up into an unstable state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import mujoco
import numpy as np

from robot_learning.sim.kinematics import DifferentialIK, axis_angle_to_quat, quat_error, quat_mul
from robot_learning.sim.robot_model import (
    ARM_ACTUATORS,
    ARM_JOINTS,
    GRIPPER_ACTUATOR,
    GRIPPER_CTRL_MAX,
    TCP_SITE,
)
from robot_learning.specs import FeatureSpec

ControlMode = Literal["ee_delta", "joint"]
CONTROL_MODES: tuple[str, ...] = get_args(ControlMode)

MAX_POS_STEP = 0.05  # m per control step
MAX_ROT_STEP = 0.3  # rad per control step
MAX_TRACKING_ERROR = 0.15  # rad the joint target may lead the measured joint
MAX_POSE_LEAD = 0.04  # m the commanded tcp position may lead the measured one
MAX_ROT_LEAD = 0.3  # rad the commanded tcp orientation may lead the measured one
WORKSPACE_LOW = np.array([0.15, -0.55, 0.005])
WORKSPACE_HIGH = np.array([0.85, 0.55, 0.6])


@dataclass(frozen=True)
class ArmLimits:
    joint_low: np.ndarray
    joint_high: np.ndarray


def action_spec(mode: ControlMode, limits: ArmLimits) -> FeatureSpec:
    """The single ``action`` feature for a control mode, with bounds and element names."""
    if mode == "ee_delta":
        p, r = MAX_POS_STEP, MAX_ROT_STEP
        return FeatureSpec(
            shape=(7,),
            dtype="float32",
            kind="lowdim",
            low=(-p, -p, -p, -r, -r, -r, 0.0),
            high=(p, p, p, r, r, r, 1.0),
            names=("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
            description="tcp delta (m, axis-angle rad, world frame) and gripper closure 0..1",
        )
    if mode == "joint":
        return FeatureSpec(
            shape=(7,),
            dtype="float32",
            kind="lowdim",
            low=(*limits.joint_low.tolist(), 0.0),
            high=(*limits.joint_high.tolist(), 1.0),
            names=(*ARM_JOINTS, "gripper"),
            description="absolute joint position targets (rad) and gripper closure 0..1",
        )
    raise ValueError(f"unknown control mode {mode!r}; valid modes: {', '.join(CONTROL_MODES)}")


class ArmController:
    """Holds the commanded joint targets and tcp pose; writes actuator controls."""

    def __init__(self, model: mujoco.MjModel, mode: ControlMode) -> None:
        if mode not in CONTROL_MODES:
            raise ValueError(
                f"unknown control mode {mode!r}; valid modes: {', '.join(CONTROL_MODES)}"
            )
        self.mode = mode
        self.model = model
        self.ik = DifferentialIK(model, TCP_SITE, ARM_JOINTS)
        self.qpos_ids = self.ik.qpos_ids
        self.arm_actuators = np.array([model.actuator(a).id for a in ARM_ACTUATORS])
        self.gripper_actuator = model.actuator(GRIPPER_ACTUATOR).id
        self.limits = ArmLimits(self.ik.lower.copy(), self.ik.upper.copy())
        self.q_cmd = np.zeros(len(ARM_JOINTS))
        self.target_pos = np.zeros(3)
        self.target_quat = np.array([1.0, 0.0, 0.0, 0.0])

    def reset(self, data: mujoco.MjData) -> None:
        self.q_cmd = data.qpos[self.qpos_ids].copy()
        self.target_pos, self.target_quat = self.ik.forward(data.qpos)
        data.ctrl[self.arm_actuators] = self.q_cmd

    def apply(self, data: mujoco.MjData, action: np.ndarray) -> None:
        """Write controls for one (already validated and clipped) action.

        Tcp deltas move the commanded pose (as a SpaceMouse teleop or a real UR servo loop does),
        so ten 1 cm steps move the tool 10 cm even though the servos lag. The commanded pose may
        lead the measured one by at most ``MAX_POSE_LEAD``: pushing against a surface cannot
        wind it up.
        """
        q_meas = data.qpos[self.qpos_ids]
        if self.mode == "ee_delta":
            pos, quat = self.ik.forward(data.qpos)
            target_pos = self.target_pos + action[:3]
            target_pos = pos + _clip_norm(target_pos - pos, MAX_POSE_LEAD)
            target_pos = np.clip(target_pos, WORKSPACE_LOW, WORKSPACE_HIGH)
            target_quat = quat_mul(axis_angle_to_quat(action[3:6]), self.target_quat)
            lead = quat_error(target_quat, quat)
            if np.linalg.norm(lead) > MAX_ROT_LEAD:
                target_quat = quat_mul(axis_angle_to_quat(_clip_norm(lead, MAX_ROT_LEAD)), quat)
            seed = data.qpos.copy()
            seed[self.qpos_ids] = self.q_cmd
            q = self.ik.solve(seed, target_pos, target_quat, iterations=2)
            self.target_pos, self.target_quat = target_pos, target_quat
        else:
            q = np.clip(
                action[:6].astype(np.float64), self.limits.joint_low, self.limits.joint_high
            )
        self.q_cmd = np.clip(q, q_meas - MAX_TRACKING_ERROR, q_meas + MAX_TRACKING_ERROR)
        if self.mode == "joint":
            seed = data.qpos.copy()
            seed[self.qpos_ids] = self.q_cmd
            self.target_pos, self.target_quat = self.ik.forward(seed)
        data.ctrl[self.arm_actuators] = self.q_cmd
        data.ctrl[self.gripper_actuator] = float(action[6]) * GRIPPER_CTRL_MAX


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v * (limit / norm) if norm > limit else v
