"""Scripted-expert registry and the adapter that speaks the env's control mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robot_learning.registry import Registry
from robot_learning.sim.experts.base import ExpertConfig, ScriptedExpert
from robot_learning.sim.kinematics import axis_angle_to_quat, quat_mul

if TYPE_CHECKING:
    from robot_learning.sim.env import ManipulationEnv

EXPERTS: Registry[ScriptedExpert] = Registry("expert")
EXPERTS.register("lift", "robot_learning.sim.experts.lift:PickExpert", "IK pick-and-lift")
EXPERTS.register(
    "push", "robot_learning.sim.experts.push:PushExpert", "IK pushing along the goal line"
)
EXPERTS.register(
    "insert",
    "robot_learning.sim.experts.insert:InsertExpert",
    "IK grasp, align over the hole, descend compliantly",
)
EXPERTS.register(
    "pick_language",
    "robot_learning.sim.experts.pick_language:PickNamedExpert",
    "picks the cube the instruction names",
)


def make_expert(task: str, config: ExpertConfig | None = None) -> ScriptedExpert:
    return EXPERTS.make(task, config)


def expert_action(env: ManipulationEnv, expert: ScriptedExpert) -> np.ndarray:
    """The expert's next action in ``env``'s control mode (tcp delta, or joint targets via IK)."""
    ee_action = expert.act(env.privileged_state())
    if env.config.control_mode == "ee_delta":
        return ee_action
    pos, quat = env.controller.target_pos, env.controller.target_quat
    target_quat = quat_mul(axis_angle_to_quat(ee_action[3:6]), quat)
    seed = env.data.qpos.copy()
    seed[env.controller.qpos_ids] = env.controller.q_cmd
    q = env.controller.ik.solve(seed, pos + ee_action[:3], target_quat, iterations=3)
    return np.concatenate([q, ee_action[6:]]).astype(np.float32)


__all__ = ["EXPERTS", "ExpertConfig", "ScriptedExpert", "expert_action", "make_expert"]
