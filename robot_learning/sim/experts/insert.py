"""Insert expert: grasp the peg near its top, carry it over the hole, align, descend.

Alignment is closed-loop on the peg itself (not the gripper), so in-hand slip and yaw offsets are
corrected on the way down; if the peg jams, the expert backs off and re-aligns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_learning.sim.experts.base import ScriptedExpert, Target, nearest_grasp_yaw
from robot_learning.sim.kinematics import quat_yaw, wrap_angle
from robot_learning.sim.tasks.insert import INSERT_DEPTH, PEG_HALF_LENGTH

GRASP_BELOW_TOP = 0.018
CARRY_Z = 0.20
CLOSE_STEPS = 10
ALIGN_TOL = 0.0015
YAW_TOL = 0.02
DESCENT_STEP = 0.004
FINE_GAIN = 0.25  # low gain near the hole: stable under a few steps of command latency


def _square_yaw_error(target_yaw: float, yaw: float) -> float:
    return wrap_angle(4 * (target_yaw - yaw)) / 4


class InsertExpert(ScriptedExpert):
    def target(self, state: dict[str, Any]) -> Target:
        peg = np.asarray(state["object_pos"], dtype=np.float64)
        peg_yaw = quat_yaw(np.asarray(state["object_quat"], dtype=np.float64))
        hole = np.asarray(state["hole_pos"], dtype=np.float64)
        hole_yaw = quat_yaw(np.asarray(state["hole_quat"], dtype=np.float64))
        tcp = np.asarray(state["tcp_pos"], dtype=np.float64)
        tcp_yaw = quat_yaw(state["tcp_quat"])
        if self.phase == 0:
            self.memory["yaw"] = nearest_grasp_yaw(peg_yaw, tcp_yaw)
            self.advance()
        grasp_z = peg[2] + PEG_HALF_LENGTH - GRASP_BELOW_TOP
        if self.phase == 1:  # hover over the peg
            t = Target(np.array([peg[0], peg[1], grasp_z + 0.06]), self.memory["yaw"], 0.0)
            if self.reached(state, t, tol=0.01):
                self.advance()
            return t
        if self.phase == 2:  # descend around it
            t = Target(np.array([peg[0], peg[1], grasp_z]), self.memory["yaw"], 0.0)
            if self.reached(state, t, tol=0.004) or self.phase_steps > 40:
                self.advance()
            return t
        if self.phase == 3:  # close
            self.memory.setdefault("grasp", tcp.copy())
            if self.phase_steps >= CLOSE_STEPS:
                self.advance()
            return Target(self.memory["grasp"], self.memory["yaw"], 1.0)
        # in hand: steer the peg (not the tcp) over the hole
        xy = tcp[:2] + (hole[:2] - peg[:2])
        yaw = tcp_yaw + _square_yaw_error(hole_yaw, peg_yaw)
        bottom_offset = tcp[2] - (peg[2] - PEG_HALF_LENGTH)  # tcp height above the peg bottom
        lateral = float(np.linalg.norm(hole[:2] - peg[:2]))
        yaw_err = abs(_square_yaw_error(hole_yaw, peg_yaw))
        if self.phase == 4:  # lift clear of the fixture
            t = Target(np.array([tcp[0], tcp[1], CARRY_Z]), yaw, 1.0)
            if tcp[2] > CARRY_Z - 0.03:
                self.advance()
            return t
        if self.phase == 5:  # carry over the hole and align
            t = Target(np.array([xy[0], xy[1], CARRY_Z]), yaw, 1.0)
            if lateral < 0.004 and yaw_err < 2 * YAW_TOL:
                self.advance()
            return t
        if self.phase == 6:  # lower to just above the rim, aligning finely
            z = hole[2] + 0.006 + bottom_offset
            t = Target(np.array([xy[0], xy[1], z]), yaw, 1.0, gain=FINE_GAIN)
            if abs(tcp[2] - z) < 0.004 and lateral < ALIGN_TOL and yaw_err < YAW_TOL:
                self.advance()
                self.memory["best_depth"] = -1.0
                self.memory["stall"] = 0
            return t
        # insert: descend in small steps; back off and re-align if the peg jams
        depth = hole[2] - (peg[2] - PEG_HALF_LENGTH)
        if depth > self.memory["best_depth"] + 0.0005:
            self.memory["best_depth"], self.memory["stall"] = depth, 0
        else:
            self.memory["stall"] += 1
        if self.memory["stall"] > 12 and depth < INSERT_DEPTH:
            self.phase = 6
            self.phase_steps = 0
        commanded_z = float(state["tcp_target_pos"][2])
        z = max(
            commanded_z - DESCENT_STEP / FINE_GAIN, hole[2] - INSERT_DEPTH - 0.006 + bottom_offset
        )
        return Target(np.array([xy[0], xy[1], z]), yaw, 1.0, gain=FINE_GAIN)
