"""Rotation helpers and damped-least-squares inverse kinematics on a MuJoCo model.

IK runs on a private ``MjData`` so it never disturbs the simulation state; only ``mj_kinematics``
and ``mj_comPos`` are evaluated per iteration, which keeps one solve to tens of microseconds.
"""

from __future__ import annotations

import mujoco
import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def axis_angle_to_quat(rotvec: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(rotvec))
    out = np.array([1.0, 0.0, 0.0, 0.0])
    if angle > 1e-12:
        mujoco.mju_axisAngle2Quat(out, np.asarray(rotvec, dtype=np.float64) / angle, angle)
    return out


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Rotation vector of ``q`` (shortest rotation, angle in [0, pi])."""
    out = np.zeros(3)
    mujoco.mju_quat2Vel(out, np.asarray(q, dtype=np.float64), 1.0)
    return out


def quat_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking ``current`` to ``target``."""
    err = quat_mul(target, quat_conj(current))
    if err[0] < 0:
        err = -err
    return quat_to_axis_angle(err)


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quat_yaw(q: np.ndarray) -> float:
    """Heading of the body x axis projected on the world xy plane."""
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, np.asarray(q, dtype=np.float64))
    return float(np.arctan2(mat[3], mat[0]))


def wrap_angle(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


class DifferentialIK:
    """Damped-least-squares IK for one site over a subset of joints.

    Solves for joint positions whose site pose matches a target pose; joints outside ``qpos_ids``
    keep the values they have in the seed. Joint limits are respected by clamping each iteration.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joint_names: tuple[str, ...],
        damping: float = 1e-3,
        rot_weight: float = 0.5,
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.site_id = model.site(site).id
        joint_ids = [model.joint(j).id for j in joint_names]
        self.qpos_ids = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.dof_ids = np.array([model.jnt_dofadr[j] for j in joint_ids])
        self.lower = model.jnt_range[joint_ids, 0].copy()
        self.upper = model.jnt_range[joint_ids, 1].copy()
        self.damping = damping
        self.rot_weight = rot_weight
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._jac = np.zeros((6, len(joint_ids)))
        self._err = np.zeros(6)
        self._eye3 = damping * np.eye(3)
        self._eye6 = damping * np.eye(6)

    def forward(self, qpos_full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site (position, quaternion) for a full qpos vector."""
        self.data.qpos[:] = qpos_full
        mujoco.mj_kinematics(self.model, self.data)
        pos = self.data.site_xpos[self.site_id].copy()
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.site_id])
        return pos, quat

    def solve(
        self,
        qpos_seed: np.ndarray,
        target_pos: np.ndarray,
        target_quat: np.ndarray | None,
        iterations: int = 3,
        max_joint_step: float = 0.2,
    ) -> np.ndarray:
        """Joint positions (for ``joint_names``) moving the site toward the target pose.

        ``target_quat=None`` solves for position only. Use :meth:`forward` on the result to
        measure the remaining error.
        """
        data, model = self.data, self.model
        data.qpos[:] = qpos_seed
        q = data.qpos[self.qpos_ids].copy()
        rows = 3 if target_quat is None else 6
        eye = self._eye3 if rows == 3 else self._eye6
        quat = np.empty(4)
        for _ in range(iterations):
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            mujoco.mj_jacSite(model, data, self._jacp, self._jacr, self.site_id)
            jac = self._jac[:rows]
            jac[:3] = self._jacp[:, self.dof_ids]
            err = self._err[:rows]
            err[:3] = target_pos - data.site_xpos[self.site_id]
            if target_quat is not None:
                jac[3:] = self._jacr[:, self.dof_ids] * self.rot_weight
                mujoco.mju_mat2Quat(quat, data.site_xmat[self.site_id])
                err[3:] = quat_error(target_quat, quat) * self.rot_weight
            dq = jac.T @ np.linalg.solve(jac @ jac.T + eye, err)
            q = np.clip(q + np.clip(dq, -max_joint_step, max_joint_step), self.lower, self.upper)
            data.qpos[self.qpos_ids] = q
        return q
