"""Low-poly visual meshes: far fewer triangles, identical dynamics."""

import mujoco
import numpy as np

from robot_learning.sim.robot_model import build_robot_spec
from robot_learning.sim.visual_meshes import cluster_decimate


def _visual_faces(model: mujoco.MjModel) -> int:
    total = 0
    for g in range(model.ngeom):
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and model.geom_group[g] == 2:
            total += int(model.mesh_facenum[model.geom_dataid[g]])
    return total


def test_low_poly_model_keeps_dynamics_and_cuts_triangles() -> None:
    full = build_robot_spec(low_poly=False).compile()
    low = build_robot_spec(low_poly=True).compile()
    assert full.nbody == low.nbody and full.nq == low.nq
    assert np.allclose(full.body_mass, low.body_mass)
    assert np.allclose(full.body_inertia, low.body_inertia)
    assert np.allclose(full.body_ipos, low.body_ipos, atol=1e-9)
    assert _visual_faces(low) * 8 < _visual_faces(full)
    # same controls, same trajectory
    trajectories = []
    for model in (full, low):
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, 0)
        data.ctrl[:6] = data.qpos[:6] + 0.3
        mujoco.mj_step(model, data, nstep=200)
        trajectories.append(data.qpos.copy())
    assert np.allclose(trajectories[0], trajectories[1], atol=1e-6)


def test_cluster_decimate_on_a_fine_sphere() -> None:
    # a UV sphere with many faces
    n = 60
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, n), indexing="ij")
    verts = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    verts = verts.reshape(-1, 3)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [(a, c, b), (b, c, d)]
    faces_arr = np.array(faces)
    new_v, new_f = cluster_decimate(verts, faces_arr, target_faces=500)
    assert 50 < len(new_f) <= 500
    assert new_f.max() < len(new_v)
    radii = np.linalg.norm(new_v[np.unique(new_f)], axis=1)
    assert radii.min() > 0.8 and radii.max() <= 1.0 + 1e-9  # still a unit sphere, roughly
