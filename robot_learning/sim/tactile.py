"""Fingertip tactile grids computed from MuJoCo contact forces.

Each 2F-85 finger pad carries a ``rows x cols`` taxel grid spanning its contact face. Every contact
touching a pad is located in the pad frame and its force (normal, and shear along the pad's two
in-plane axes) is splatted bilinearly onto the four nearest taxels, so the grid integrates to the
total contact force, like a GelSight/DIGIT force map at coarse resolution.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_learning.sim.robot_model import PAD_BODIES, PAD_GEOMS

# pad face extent in the pad body frame (from the 2F-85 pad_box1/pad_box2 geoms)
PAD_X_HALF = 0.011
PAD_Z_RANGE = (0.0, 0.0375)


class TactileGrid:
    """Computes ``{side: (rows, cols, 3)}`` force maps [normal, shear_x, shear_z] in newtons."""

    def __init__(self, model: mujoco.MjModel, rows: int = 8, cols: int = 6) -> None:
        if rows < 1 or cols < 1:
            raise ValueError(f"tactile grid must be at least 1x1, got {rows}x{cols}")
        self.rows, self.cols = rows, cols
        self.pad_body = {side: model.body(name).id for side, name in PAD_BODIES.items()}
        self.geom_side: dict[int, str] = {}
        for side, geoms in PAD_GEOMS.items():
            for g in geoms:
                self.geom_side[model.geom(g).id] = side
        self._is_pad = np.zeros(model.ngeom, dtype=bool)
        self._is_pad[list(self.geom_side)] = True
        self._force = np.zeros(6)

    def compute(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, np.ndarray]:
        grids = {side: np.zeros((self.rows, self.cols, 3), dtype=np.float32) for side in PAD_BODIES}
        ncon = data.ncon
        if ncon == 0:
            return grids
        g1 = data.contact.geom1[:ncon]
        g2 = data.contact.geom2[:ncon]
        hits = np.nonzero(self._is_pad[g1] | self._is_pad[g2])[0]
        for i in hits:
            pad_is_g1 = int(g1[i]) in self.geom_side
            side = self.geom_side[int(g1[i]) if pad_is_g1 else int(g2[i])]
            mujoco.mj_contactForce(model, data, int(i), self._force)
            frame = data.contact.frame[i].reshape(3, 3)
            world_force = frame.T @ self._force[:3]  # force geom1 exerts on geom2... sign below
            if not pad_is_g1:
                world_force = -world_force  # force acting on the pad
            body = self.pad_body[side]
            rot = data.xmat[body].reshape(3, 3)
            local_pos = rot.T @ (data.contact.pos[i] - data.xpos[body])
            local_force = rot.T @ world_force
            normal = abs(float(local_force[1]))
            self._splat(
                grids[side], local_pos, (normal, float(local_force[0]), float(local_force[2]))
            )
        return grids

    def _splat(self, grid: np.ndarray, pos: np.ndarray, force: tuple[float, float, float]) -> None:
        u = (pos[2] - PAD_Z_RANGE[0]) / (PAD_Z_RANGE[1] - PAD_Z_RANGE[0]) * self.rows - 0.5
        v = (pos[0] + PAD_X_HALF) / (2 * PAD_X_HALF) * self.cols - 0.5
        u = float(np.clip(u, 0.0, self.rows - 1))
        v = float(np.clip(v, 0.0, self.cols - 1))
        r0, c0 = int(u), int(v)
        r1, c1 = min(r0 + 1, self.rows - 1), min(c0 + 1, self.cols - 1)
        fu, fv = u - r0, v - c0
        vec = np.asarray(force, dtype=np.float32)
        grid[r0, c0] += vec * (1 - fu) * (1 - fv)
        grid[r1, c0] += vec * fu * (1 - fv)
        grid[r0, c1] += vec * (1 - fu) * fv
        grid[r1, c1] += vec * fu * fv
