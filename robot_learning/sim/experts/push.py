"""Push expert: approach behind the puck on the puck->target line, then push along it.

The push direction is re-estimated every step from the puck's current position, so lateral drift
is corrected by pushing slightly off-centre; when the puck escapes sideways the expert lifts and
re-approaches from behind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_learning.sim.experts.base import ScriptedExpert, Target
from robot_learning.sim.tasks.push import PUCK_RADIUS

HOVER_Z = 0.08
PUSH_Z = 0.022
STANDOFF = PUCK_RADIUS + 0.035  # tcp distance behind the puck centre before pushing
CONTACT = PUCK_RADIUS + 0.012  # tcp distance behind the puck centre while pushing
LATERAL_LIMIT = 0.018


class PushExpert(ScriptedExpert):
    def target(self, state: dict[str, Any]) -> Target:
        puck = np.asarray(state["object_pos"], dtype=np.float64)
        goal = np.asarray(state["target_pos"], dtype=np.float64)
        to_goal = goal[:2] - puck[:2]
        dist = float(np.linalg.norm(to_goal))
        u = to_goal / max(dist, 1e-6)
        yaw = float(np.arctan2(u[1], u[0]))
        tcp = state["tcp_pos"]
        behind = puck[:2] - u * STANDOFF
        if self.phase == 0:  # hover behind the puck
            t = Target(np.array([*behind, HOVER_Z]), yaw, 1.0)
            if self.reached(state, t, tol=0.015, yaw_tol=0.15):
                self.advance()
            return t
        if self.phase == 1:  # descend behind it
            t = Target(np.array([*behind, PUSH_Z]), yaw, 1.0)
            if self.reached(state, t, tol=0.01, yaw_tol=0.2) or self.phase_steps > 30:
                self.advance()
            return t
        # push: aim at the contact point behind the puck, moving forward along u
        rel = tcp[:2] - puck[:2]
        lateral = float(abs(rel[0] * u[1] - rel[1] * u[0]))
        ahead = float(rel @ u) > -PUCK_RADIUS * 0.5
        if dist > 0.01 and (lateral > LATERAL_LIMIT or ahead):
            self.phase = 0  # lost the puck: go around and approach again
            self.phase_steps = 0
            return Target(np.array([tcp[0], tcp[1], HOVER_Z]), yaw, 1.0)
        if dist <= 0.008:
            return Target(np.array([tcp[0], tcp[1], PUSH_Z]), yaw, 1.0)
        step = min(0.02, dist)
        contact = puck[:2] - u * CONTACT + u * step
        return Target(np.array([*contact, PUSH_Z]), yaw, 1.0)
