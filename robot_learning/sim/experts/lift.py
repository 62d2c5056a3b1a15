"""Lift expert: hover over the cube aligned with its faces, descend, close, raise."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_learning.sim.experts.base import ScriptedExpert, Target, nearest_grasp_yaw
from robot_learning.sim.kinematics import quat_yaw

HOVER = 0.08
LIFT_TO = 0.22
CLOSE_STEPS = 8
GRASP_ABOVE_CENTRE = 0.004  # pads slightly above the cube centre keep the fingertips off the table


class PickExpert(ScriptedExpert):
    """Picks the object whose pose is under ``pos_key``/``quat_key`` in the privileged state."""

    pos_key = "object_pos"
    quat_key = "object_quat"

    def target(self, state: dict[str, Any]) -> Target:
        obj = np.asarray(state[self.pos_key], dtype=np.float64)
        if self.phase == 0:  # choose the grasp yaw once, from the object's initial pose
            self.memory["yaw"] = nearest_grasp_yaw(
                quat_yaw(np.asarray(state[self.quat_key], dtype=np.float64)),
                quat_yaw(state["tcp_quat"]),
            )
            self.advance()
        yaw = self.memory["yaw"]
        if self.phase == 1:  # hover above the object
            t = Target(obj + np.array([0.0, 0.0, HOVER]), yaw, 0.0)
            if self.reached(state, t, tol=0.012):
                self.advance()
            return t
        if self.phase == 2:  # descend to grasp height
            t = Target(obj + np.array([0.0, 0.0, GRASP_ABOVE_CENTRE]), yaw, 0.0)
            if self.reached(state, t, tol=0.006) or self.phase_steps > 40:
                self.advance()
            return t
        if self.phase == 3:  # close
            if "grasp_pos" not in self.memory:
                self.memory["grasp_pos"] = state["tcp_pos"].copy()
            t = Target(self.memory["grasp_pos"], yaw, 1.0)
            if self.phase_steps >= CLOSE_STEPS:
                self.advance()
            return t
        lift_pos = self.memory["grasp_pos"].copy()
        lift_pos[2] = LIFT_TO
        return Target(lift_pos, yaw, 1.0)
