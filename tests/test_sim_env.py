"""The MuJoCo env: specs, determinism, control modes, bad input, stability, sensors."""

import mujoco
import numpy as np
import pytest

from robot_learning.registry import UnknownNameError
from robot_learning.sim.control import WORKSPACE_HIGH, WORKSPACE_LOW
from robot_learning.sim.env import ManipulationEnv
from robot_learning.sim.experts import expert_action, make_expert
from robot_learning.sim.kinematics import DifferentialIK
from robot_learning.sim.robot_model import (
    ARM_JOINTS,
    HOME_QPOS,
    HOME_TCP_POS,
    TCP_SITE,
    TOP_DOWN_QUAT,
    build_robot_spec,
)
from robot_learning.sim.tasks import TASKS

TASK_NAMES = ["lift", "push", "insert", "pick_language"]


def test_registry_lists_the_four_tasks() -> None:
    assert set(TASK_NAMES) <= set(TASKS.names())


def test_home_configuration_points_down_at_home_pose() -> None:
    model = build_robot_spec().compile()
    ik = DifferentialIK(model, TCP_SITE, ARM_JOINTS)
    qpos = np.zeros(model.nq)
    qpos[ik.qpos_ids] = HOME_QPOS
    pos, quat = ik.forward(qpos)
    assert np.allclose(pos, HOME_TCP_POS, atol=2e-3)
    assert abs(abs(float(quat @ TOP_DOWN_QUAT)) - 1.0) < 1e-3


@pytest.mark.parametrize("task", TASK_NAMES)
def test_observations_match_spec_and_seeding_is_deterministic(task: str) -> None:
    env = ManipulationEnv(task=task)
    spec = env.observation_spec()
    obs_a, info = env.reset(seed=7)
    spec.validate(obs_a)
    assert env.observation_space.contains(obs_a)
    assert "is_success" in info and not info["is_success"]
    obs_b, _ = env.reset(seed=7)
    obs_c, _ = env.reset(seed=8)
    for name, s in spec.items():
        if s.kind != "language":
            assert np.array_equal(obs_a[name], obs_b[name]), name
    assert any(
        not np.array_equal(obs_a[n], obs_c[n]) for n, s in spec.items() if s.kind == "lowdim"
    )
    obs, reward, _terminated, _truncated, info = env.step(env.action_space.sample())
    spec.validate(obs)
    assert np.isfinite(reward)
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "stack"}, "valid task names: insert, lift, pick_language, push"),
        ({"variant": "real"}, "valid variants: default, train, real-proxy"),
        ({"cameras": ("top",)}, "valid cameras: scene, wrist"),
        ({"control_mode": "torque"}, "valid modes: ee_delta, joint"),
        ({"reward": "dense"}, "valid rewards: sparse, shaped, progress"),
        ({"control_hz": 1000.0}, "control_hz must be in"),
    ],
)
def test_bad_configuration_names_what_is_valid(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, UnknownNameError), match=message):
        ManipulationEnv(**kwargs)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(6), "shape \\(6,\\), expected \\(7,\\)"),
        (np.zeros((1, 7)), "shape \\(1, 7\\)"),
        (np.array([0, 0, np.nan, 0, 0, 0, 0]), "NaN or Inf in \\['dz'\\]"),
        (np.array([0, 0, 0, 0, 0, np.inf, 0]), "NaN or Inf in \\['drz'\\]"),
        ("forward", "numeric array"),
    ],
)
def test_bad_actions_are_rejected_and_env_stays_usable(action: object, message: str) -> None:
    env = ManipulationEnv(task="lift")
    env.reset(seed=0)
    before = env.data.qpos.copy()
    with pytest.raises(ValueError, match=message):
        env.step(action)  # type: ignore[arg-type]
    assert np.array_equal(env.data.qpos, before)  # nothing was executed
    env.step(np.zeros(7))


def test_out_of_range_actions_are_clipped_and_reported() -> None:
    env = ManipulationEnv(task="lift")
    env.reset(seed=0)
    *_, info = env.step(np.array([1.0, -1.0, 0.0, 0.0, 0.0, 5.0, 3.0]))
    executed = info["executed_action"]
    assert executed[0] == pytest.approx(0.05) and executed[1] == pytest.approx(-0.05)
    assert executed[5] == pytest.approx(0.3) and executed[6] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["ee_delta", "joint"])
def test_extreme_random_actions_never_destabilise_the_sim(mode: str) -> None:
    env = ManipulationEnv(task="insert", control_mode=mode)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for i in range(300):
        action = rng.uniform(-10, 10, size=7)
        if i % 50 < 10:
            action = np.sign(action) * 1e6  # saturating commands
        obs, *_ = env.step(action)
        assert np.all(np.isfinite(env.data.qpos)) and np.all(np.isfinite(env.data.qvel))
        if mode == "ee_delta":  # tcp targets are clamped to the workspace box
            assert np.all(obs["ee_pos"] > WORKSPACE_LOW - 0.05)
            assert np.all(obs["ee_pos"] < WORKSPACE_HIGH + 0.05)
    for warning in (
        mujoco.mjtWarning.mjWARN_BADQACC,
        mujoco.mjtWarning.mjWARN_BADQVEL,
        mujoco.mjtWarning.mjWARN_BADQPOS,
    ):
        assert env.data.warning[warning].number == 0


def test_ee_delta_moves_the_tcp_by_the_commanded_amount() -> None:
    env = ManipulationEnv(task="lift")
    obs, _ = env.reset(seed=0)
    start = obs["ee_pos"].copy()
    for _ in range(10):
        obs, *_ = env.step(np.array([0.01, 0.0, -0.005, 0, 0, 0, 0]))
    for _ in range(10):
        obs, *_ = env.step(np.zeros(7))
    moved = obs["ee_pos"] - start
    assert moved[0] == pytest.approx(0.10, abs=0.01)
    assert moved[2] == pytest.approx(-0.05, abs=0.01)
    assert abs(moved[1]) < 0.01


def test_joint_mode_reaches_joint_targets() -> None:
    env = ManipulationEnv(task="lift", control_mode="joint")
    env.reset(seed=0)
    target = HOME_QPOS + np.array([0.2, -0.1, 0.15, 0.1, -0.1, 0.3])
    for _ in range(40):
        obs, *_ = env.step(np.array([*target, 0.0]))
    assert np.allclose(obs["joint_pos"], target, atol=0.01)


def test_control_rate_sets_physics_substeps() -> None:
    assert ManipulationEnv(task="lift", control_hz=10).substeps == 50
    env = ManipulationEnv(task="lift", control_hz=50)
    assert env.substeps == 10 and env.control_dt == pytest.approx(0.02)
    assert env.max_episode_steps == round(150 * 50 / 20)


def test_tactile_grids_feel_the_grasp() -> None:
    env = ManipulationEnv(task="lift")
    expert = make_expert("lift")
    obs, _ = env.reset(seed=3)
    expert.reset(seed=3)
    assert obs["tactile_left"].sum() == 0 and obs["tactile_right"].sum() == 0
    felt = {"left": 0.0, "right": 0.0}
    for _ in range(80):
        obs, _, terminated, _, info = env.step(expert_action(env, expert))
        for side in felt:
            felt[side] = max(felt[side], float(obs[f"tactile_{side}"][..., 0].sum()))
        if terminated:
            break
    assert info["is_success"]
    assert felt["left"] > 0.5 and felt["right"] > 0.5  # newtons of normal force on each pad
    assert np.all(obs["tactile_left"][..., 0] >= 0)


def test_cameras_render_rgb_and_depth() -> None:
    env = ManipulationEnv(task="lift", cameras=("scene", "wrist"), image_size=(64, 80), depth=True)
    obs, _ = env.reset(seed=0)
    env.observation_spec().validate(obs)
    for cam in ("scene", "wrist"):
        rgb = obs[f"{cam}_rgb"]
        assert rgb.shape == (64, 80, 3) and rgb.dtype == np.uint8
        assert rgb.std() > 5  # a real image, not a blank frame
        depth = obs[f"{cam}_depth"]
        assert depth.dtype == np.uint16 and 50 < np.median(depth) < 3000  # millimetres
    # the red cube is visible in the scene camera: some strongly red pixels
    rgb = obs["scene_rgb"].astype(int)
    assert ((rgb[..., 0] > 120) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)).sum() > 3
    env.close()


def test_sparse_reward_is_success_only() -> None:
    env = ManipulationEnv(task="lift", reward="sparse")
    env.reset(seed=0)
    _, reward, *_ = env.step(np.zeros(7))
    assert reward == 0.0
    shaped = ManipulationEnv(task="lift")
    shaped.reset(seed=0)
    _, reward, *_ = shaped.step(np.zeros(7))
    assert 0.0 < reward < 1.0


def test_progress_reward_pays_only_for_moving_toward_the_goal() -> None:
    """Potential-based shaping: each step pays the change in the task's shaping."""
    envs = {mode: ManipulationEnv(task="insert", reward=mode) for mode in ("shaped", "progress")}
    expert = make_expert("insert")
    for env in envs.values():
        env.reset(seed=3)
    expert.reset()
    progress_env = envs["progress"]
    first = progress_env.task.shaped_reward(progress_env.model, progress_env.data)
    shaping, paid, successes = [first], [], 0
    for _ in range(50):  # the expert reaches, grasps and carries the peg toward the hole
        action = expert_action(progress_env, expert)
        (_, shaped, *_), (_, progress, _, _, info) = (env.step(action) for env in envs.values())
        successes += int(info["is_success"])
        shaping.append(shaped - float(info["is_success"]))
        paid.append(progress - float(info["is_success"]))
    assert np.allclose(paid, np.diff(shaping), atol=1e-9)
    assert shaping[-1] - shaping[0] > 0.3  # the expert's progress was paid
    # the episode's shaping sums to last minus first: loitering earns nothing more
    assert sum(paid) == pytest.approx(shaping[-1] - first)
    assert successes == 0
    hold = np.array([0, 0, 0, 0, 0, 0, 1.0])  # keep the peg in the closed gripper, above the hole
    held = [progress_env.step(hold)[1] for _ in range(10)]
    # ten steps of hovering: progress pays about nothing, shaped pays ten times its level
    assert abs(sum(held)) < 0.05 and envs["shaped"].step(hold)[1] > 0.3


def test_insert_observes_the_peg_in_the_hole_frame_and_reads_inside_the_hole_on_success() -> None:
    """``peg_in_hole`` is the peg centre in the hole body's frame (MuJoCo's own rotation),
    shifted to the rim and the peg's bottom; the expert's success reads as inside the hole."""
    from robot_learning.sim.tasks.insert import HOLE_DEPTH, HOLE_HALF, INSERT_DEPTH, PEG_HALF_LENGTH

    env = ManipulationEnv(task="insert")
    expert = make_expert("insert")
    obs, _ = env.reset(seed=5)
    expert.reset()
    for step in range(200):
        hole = env.model.body("hole").id
        peg = env.data.xpos[env.model.body("peg").id]
        local = env.data.xmat[hole].reshape(3, 3).T @ (peg - env.data.xpos[hole])
        expected = local - np.array([0.0, 0.0, HOLE_DEPTH + PEG_HALF_LENGTH])
        np.testing.assert_allclose(obs["peg_in_hole"], expected, atol=1e-5)
        assert abs(obs["peg_yaw_error"][0]) <= np.pi / 4 + 1e-6
        if step == 0:
            assert np.hypot(*obs["peg_in_hole"][:2]) > 0.05  # the peg starts away from the hole
        obs, _, terminated, _, info = env.step(expert_action(env, expert))
        if terminated:
            break
    assert info["is_success"]
    x, y, z = obs["peg_in_hole"]
    assert np.hypot(x, y) < HOLE_HALF and z <= -INSERT_DEPTH
    assert abs(obs["peg_yaw_error"][0]) < np.radians(5)


def test_language_instruction_is_part_of_the_observation() -> None:
    env = ManipulationEnv(task="pick_language")
    seen = set()
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        assert obs["instruction"] == info["instruction"]
        assert any(c in obs["instruction"] for c in ("red", "green", "blue", "yellow"))
        seen.add(obs["instruction"])
    assert len(seen) > 3
    heldout = ManipulationEnv(task="pick_language", task_kwargs={"phrasing": "heldout"})
    obs, _ = heldout.reset(seed=0)
    assert obs["instruction"] not in seen
