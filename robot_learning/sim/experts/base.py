"""Scripted experts: phase machines that servo the tool-centre point through waypoints.

Experts read the simulator's ground truth (``env.privileged_state()``), so they are for sim only:
automated demonstrations and a ``scripted`` teleop device. Each phase names a tcp target, a
gripper command and when it is done; the expert turns the pose error into a bounded tcp-delta
action (the same action a human teleoperator produces) plus optional Gaussian noise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_learning.sim.control import MAX_POS_STEP, MAX_ROT_STEP
from robot_learning.sim.kinematics import quat_error, quat_mul, quat_yaw, wrap_angle, yaw_quat
from robot_learning.sim.robot_model import TOP_DOWN_QUAT


@dataclass(frozen=True)
class ExpertConfig:
    """Noise is a fraction of the per-step action bound (0 = deterministic)."""

    noise_std: float = 0.0
    pos_gain: float = 0.4  # < 0.62: stable with up to 2 control steps of latency
    rot_gain: float = 0.4
    max_speed: float = 0.03  # m per control step at 20 Hz (0.6 m/s)
    seed: int = 0


@dataclass
class Target:
    pos: np.ndarray
    yaw: float
    gripper: float
    gain: float | None = None  # overrides ExpertConfig.pos_gain (fine, delay-tolerant moves)


def top_down_quat(yaw: float) -> np.ndarray:
    return quat_mul(yaw_quat(yaw), TOP_DOWN_QUAT)


def nearest_grasp_yaw(object_yaw: float, current_yaw: float, symmetry: float = np.pi / 2) -> float:
    """The object's grasp yaw (modulo its symmetry) closest to the current tcp yaw."""
    k = np.round((current_yaw - object_yaw) / symmetry)
    return float(object_yaw + k * symmetry)


class ScriptedExpert(ABC):
    """Base class: subclasses implement :meth:`target` as a function of phase and state."""

    def __init__(self, config: ExpertConfig | None = None) -> None:
        self.config = config or ExpertConfig()
        self.rng = np.random.default_rng(self.config.seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.phase = 0
        self.phase_steps = 0
        self.memory: dict[str, Any] = {}

    def advance(self) -> None:
        self.phase += 1
        self.phase_steps = 0

    @abstractmethod
    def target(self, state: dict[str, Any]) -> Target:
        """The tcp target for the current phase; may call :meth:`advance`."""

    def act(self, state: dict[str, Any]) -> np.ndarray:
        """A tcp-delta action ``[dx, dy, dz, drx, dry, drz, gripper]``."""
        target = self.target(state)
        self.phase_steps += 1
        cfg = self.config
        # servo the commanded pose (which the arm follows with lag), so nothing overshoots
        gain = cfg.pos_gain if target.gain is None else target.gain
        dp = (target.pos - state["tcp_target_pos"]) * gain
        norm = float(np.linalg.norm(dp))
        if norm > cfg.max_speed:
            dp *= cfg.max_speed / norm
        dr = quat_error(top_down_quat(target.yaw), state["tcp_target_quat"]) * cfg.rot_gain
        dr = np.clip(dr, -MAX_ROT_STEP, MAX_ROT_STEP)
        action = np.concatenate([dp, dr, [target.gripper]])
        if cfg.noise_std > 0:
            scale = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3 + [0.0])
            action += self.rng.normal(0.0, cfg.noise_std, 7) * scale
        return action.astype(np.float32)

    @staticmethod
    def reached(
        state: dict[str, Any], target: Target, tol: float = 0.01, yaw_tol: float = 0.05
    ) -> bool:
        pos_ok = float(np.linalg.norm(target.pos - state["tcp_pos"])) < tol
        tcp_yaw = quat_yaw(state["tcp_quat"])
        return pos_ok and abs(wrap_angle(tcp_yaw - target.yaw)) < yaw_tol
