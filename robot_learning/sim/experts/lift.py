"""Lift expert: hover over the cube aligned with its faces, descend, close, raise; retry a miss.

A grasp that closes beside the object is noticed while lifting (the tcp rises, the object does
not): the expert opens, backs up and starts over from the object's new pose, up to
``MAX_ATTEMPTS`` grasps. :meth:`PickExpert.aim_off` makes the next grasp miss on purpose, so
demonstrations can start from a failed grasp and show the recovery (``recovery_prob`` of the
``scripted`` teleop).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_learning.sim.experts.base import ScriptedExpert, Target, nearest_grasp_yaw
from robot_learning.sim.kinematics import quat_yaw

HOVER = 0.08
LIFT_TO = 0.22
CLOSE_STEPS = 8
GRASP_ABOVE_CENTRE = 0.004  # pads slightly above the cube centre keep the fingertips off the table
MISS_TCP_RISE = 0.03  # once the tcp has risen this far ...
MISS_OBJECT_RISE = 0.01  # ... an object that rose less than this was not grasped
RELEASE_STEPS = 6  # open and back up for at least this many steps before the next attempt
MAX_ATTEMPTS = 3

CHOOSE_YAW, HOVER_ABOVE, DESCEND, CLOSE, LIFT, RELEASE = range(6)


class PickExpert(ScriptedExpert):
    """Picks the object whose pose is under ``pos_key``/``quat_key`` in the privileged state."""

    pos_key = "object_pos"
    quat_key = "object_quat"

    def aim_off(self, offset_xy: np.ndarray) -> None:
        """Aim the next grasp ``offset_xy`` metres beside the object: a deliberate miss."""
        self.memory["aim_offset"] = np.array([offset_xy[0], offset_xy[1], 0.0])

    @property
    def attempts(self) -> int:
        """Grasps closed so far this episode (a retry after a miss counts again)."""
        return int(self.memory.get("attempts", 0))

    def _start_over(self) -> None:
        attempts = self.attempts
        self.memory = {"attempts": attempts}
        self.phase, self.phase_steps = CHOOSE_YAW, 0

    def target(self, state: dict[str, Any]) -> Target:
        obj = np.asarray(state[self.pos_key], dtype=np.float64)
        if self.phase == CHOOSE_YAW:  # choose the grasp yaw once, from the object's pose now
            self.memory["yaw"] = nearest_grasp_yaw(
                quat_yaw(np.asarray(state[self.quat_key], dtype=np.float64)),
                quat_yaw(state["tcp_quat"]),
            )
            self.advance()
        yaw = self.memory["yaw"]
        aim = obj + self.memory.get("aim_offset", np.zeros(3))
        if self.phase == HOVER_ABOVE:
            t = Target(aim + np.array([0.0, 0.0, HOVER]), yaw, 0.0)
            if self.reached(state, t, tol=0.012):
                self.advance()
            return t
        if self.phase == DESCEND:  # to grasp height
            t = Target(aim + np.array([0.0, 0.0, GRASP_ABOVE_CENTRE]), yaw, 0.0)
            if self.reached(state, t, tol=0.006) or self.phase_steps > 40:
                self.advance()
            return t
        if self.phase == CLOSE:
            if "grasp_pos" not in self.memory:
                self.memory["grasp_pos"] = state["tcp_pos"].copy()
                self.memory["object_z"] = float(obj[2])
                self.memory["attempts"] = self.attempts + 1
            t = Target(self.memory["grasp_pos"], yaw, 1.0)
            if self.phase_steps >= CLOSE_STEPS:
                self.advance()
            return t
        grasp_pos = self.memory["grasp_pos"]
        if self.phase == LIFT:
            tcp_rise = float(state["tcp_pos"][2] - grasp_pos[2])
            object_rise = float(obj[2]) - self.memory["object_z"]
            missed = tcp_rise > MISS_TCP_RISE and object_rise < MISS_OBJECT_RISE
            if missed and self.attempts < MAX_ATTEMPTS:
                self.advance()
            else:
                lift_pos = grasp_pos.copy()
                lift_pos[2] = LIFT_TO
                return Target(lift_pos, yaw, 1.0)
        # RELEASE: open and back up above where the grasp closed, then start over
        back_up = grasp_pos + np.array([0.0, 0.0, HOVER])
        t = Target(back_up, yaw, 0.0)
        if self.phase_steps >= RELEASE_STEPS and self.reached(state, t, tol=0.02):
            self._start_over()
        return t
