"""Residual RL: the combined policy, its bound and checkpoint, PPO and SAC learning, resume.

The learning tests use a small reaching task in numpy (a base that always stops 0.2 short of
the goal on each axis), so PPO and SAC are exercised for thousands of steps in seconds; the
MuJoCo path (``robot-learning rl`` on a sim task, eval and the policy server) is tested with a
tiny diffusion base.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_learning.policies.base import Policy
from robot_learning.rl.config import PPOConfig, RLConfig, SACConfig
from robot_learning.rl.ppo import PPOAgent, train_ppo
from robot_learning.rl.replay import ReplayBuffer
from robot_learning.rl.residual_env import StepResult
from robot_learning.rl.residual_policy import (
    ResidualConfig,
    ResidualPolicy,
    load_residual,
    save_residual,
)
from robot_learning.rl.sac import SACAgent, train_sac
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

REPO = Path(__file__).resolve().parents[1]
BIAS = 0.4  # the base's constant error: it settles 0.2 past the goal on each axis
GAIN = 2.0
STEP = 0.1
TOL = 0.05
HORIZON = 25
EXPERT_UNIT = -0.8  # the residual (in bound units, bound 0.5) that cancels the bias


class BiasedReacher(Policy):
    """Steers toward the goal with a constant offset, so it never quite arrives."""

    observation_spec = SpecDict(
        {
            "pos": FeatureSpec((2,), "float32", "lowdim"),
            "goal": FeatureSpec((2,), "float32", "lowdim"),
        }
    )
    action_spec = SpecDict({"action": FeatureSpec((2,), "float32", "lowdim", low=-1.0, high=1.0)})
    n_obs_steps = 1
    chunk_len = 4
    n_action_steps = 4
    control_hz = 10.0

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        pos, goal = np.asarray(obs["pos"])[:, -1], np.asarray(obs["goal"])[:, -1]
        action = np.clip(GAIN * (goal - pos) + BIAS, -1.0, 1.0).astype(np.float32)
        return np.repeat(action[:, None], self.chunk_len, axis=1)


class ReachEnv:
    """``num_envs`` point masses; success (reward 1, episode ends) within ``TOL`` of the goal."""

    def __init__(self, policy: ResidualPolicy, num_envs: int, seed: int = 0) -> None:
        self.policy = policy
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros((num_envs, 2), np.float32)
        self.goal = np.zeros((num_envs, 2), np.float32)
        self.t = np.zeros(num_envs, np.int64)
        self.base_action = np.zeros((num_envs, 2), np.float32)

    def _respawn(self, idx: np.ndarray) -> None:
        self.pos[idx] = self.rng.uniform(-1, 1, (len(idx), 2))
        self.goal[idx] = self.rng.uniform(-0.5, 0.5, (len(idx), 2))
        self.t[idx] = 0

    def _observe(self) -> np.ndarray:
        batch = {"pos": self.pos[:, None].copy(), "goal": self.goal[:, None].copy()}
        chunk = self.policy.base_chunk(batch)
        self.base_action = chunk[:, 0].copy()
        return self.policy.raw_features(batch, chunk)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._respawn(np.arange(self.num_envs))
        return self._observe()

    def step(self, residual_unit: np.ndarray) -> StepResult:
        action = self.policy.combine(self.base_action, residual_unit)
        self.pos = (self.pos + STEP * action).astype(np.float32)
        self.t += 1
        dist = np.linalg.norm(self.pos - self.goal, axis=1)
        success = dist < TOL
        truncated = (self.t >= HORIZON) & ~success
        reward = success - 0.1 * dist  # arriving ends the cost, so success always pays
        final = self._observe()
        self._respawn(np.flatnonzero(success | truncated))
        return StepResult(
            raw_features=self._observe(),
            reward=reward.astype(np.float32),
            terminated=success,
            truncated=truncated,
            final_raw_features=final,
            success=success,
        )

    def close(self) -> None:
        pass


def reach_policy(squash: str = "clip") -> ResidualPolicy:
    config = ResidualConfig(
        residual_scale=0.5,
        intent_steps=1,
        hidden=(64, 64),
        squash=squash,
        state_std=squash == "tanh",
    )
    return ResidualPolicy(BiasedReacher(), config)


def success_rate(policy: ResidualPolicy, episodes: int = 64, seed: int = 123) -> float:
    """Deterministic residual (the deployed one) on fresh episodes."""
    env = ReachEnv(policy, episodes, seed)
    raw = env.reset()
    succeeded = np.zeros(episodes, bool)
    finished = np.zeros(episodes, bool)
    for _ in range(HORIZON):
        with torch.no_grad():
            residual = policy.actor.deterministic(policy.features(raw)).numpy()
        result = env.step(residual)
        succeeded |= result.success & ~finished
        finished |= result.terminated | result.truncated
        raw = result.raw_features
    return float(succeeded.mean())


def rl_config(algo: str, steps: int, num_envs: int, **kwargs: Any) -> RLConfig:
    return RLConfig(
        task="reach",
        algo=algo,
        num_envs=num_envs,
        total_env_steps=steps,
        budget_minutes=10,
        report_seconds=1e9,
        checkpoint_minutes=1e9,
        **kwargs,
    )


# ---- the combined policy -----------------------------------------------------------------------
def test_a_zero_residual_reproduces_a_diffusion_base_exactly(tmp_path: Path) -> None:
    base_dir = tiny_lift_base(tmp_path / "base")
    from robot_learning.policies import load_policy

    base = load_policy(base_dir)
    policy = ResidualPolicy(base, ResidualConfig(), base_dir=base_dir)
    with torch.no_grad():
        for p in policy.actor.parameters():
            p.zero_()
    obs = lift_obs_batch(base, batch=5, seed=1)
    base.reset()
    want = base.predict_chunk(obs)[:, :1]
    policy.reset()
    got = policy.predict_chunk(obs)
    assert got.shape == (5, 1, 7)
    np.testing.assert_array_equal(got, np.clip(want, policy.low, policy.high))


def test_the_residual_bound_holds_whatever_the_network_outputs() -> None:
    policy = reach_policy()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.actor.parameters():
            p.normal_(0, 10.0)  # a wild network: raw outputs far beyond +-1
    rng = np.random.default_rng(0)
    batch = {"pos": rng.uniform(-3, 3, (512, 1, 2)), "goal": rng.uniform(-3, 3, (512, 1, 2))}
    policy.feature_stats.update(policy.raw_features(batch, policy.base_chunk(batch)))
    base = np.clip(policy.base_chunk(batch)[:, 0], policy.low, policy.high)
    got = policy.predict_chunk(batch)[:, 0]
    assert np.abs(got - base).max() > 0.49  # the residual does push against its bound
    assert np.all(np.abs(got - base) <= policy.bound + 1e-6)
    assert np.all((got >= policy.low) & (got <= policy.high))
    huge = policy.combine(np.full((3, 2), 5.0), np.array([[1e9, -1e9], [3.0, 0.0], [-2, 2]]))
    assert np.all(np.abs(huge - 1.0) <= policy.bound + 1e-6)
    with pytest.raises(ValueError, match="NaN"):
        policy.combine(np.zeros((1, 2)), np.array([[np.nan, 0.0]]))


def test_the_checkpoint_reloads_the_same_policy_and_refuses_mismatched_weights(
    tmp_path: Path,
) -> None:
    base_dir = tiny_lift_base(tmp_path / "base")
    from robot_learning.policies import CheckpointError, load_policy

    base = load_policy(base_dir)
    config = ResidualConfig(base_inference_steps=1, fine_scales={"object_pos": 0.01})
    policy = ResidualPolicy(base, config, base_dir=base_dir)
    with torch.no_grad():
        for p in policy.actor.parameters():
            p.normal_(0, 0.5)
    obs = lift_obs_batch(base, batch=4, seed=2)
    policy.feature_stats.update(policy.raw_features(obs, policy.base_chunk(obs)))
    out = save_residual(policy, tmp_path / "combined")
    assert (out / "base" / "model.safetensors").is_file()
    loaded = load_policy(out)
    assert isinstance(loaded, ResidualPolicy) and loaded.base.inference_steps == 1
    assert loaded.config.fine_scales == {"object_pos": 0.01}
    policy.reset()
    loaded.reset()
    np.testing.assert_allclose(loaded.predict_chunk(obs), policy.predict_chunk(obs), atol=1e-6)
    config = json.loads((out / "config.json").read_text())
    config["residual"]["hidden"] = [32]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_residual(out)


def test_fine_scales_feed_saturating_copies_that_resolve_millimetres() -> None:
    plain = ResidualPolicy(BiasedReacher(), ResidualConfig(intent_steps=1, fine_scales={}))
    config = ResidualConfig(intent_steps=1, fine_scales={"pos": 0.01})
    fine = ResidualPolicy(BiasedReacher(), config)
    assert fine.feature_dim == plain.feature_dim + 2
    pos = np.array([[0.0, 0.5], [0.001, 0.5]], np.float32)
    batch = {"pos": pos[:, None], "goal": np.zeros((2, 1, 2), np.float32)}
    chunk = fine.base_chunk(batch)
    raw = fine.raw_features(batch, chunk)
    np.testing.assert_array_equal(raw[:, :4], plain.raw_features(batch, chunk)[:, :4])
    np.testing.assert_allclose(raw[:, 4:6], np.tanh(pos / 0.01), rtol=1e-6)
    # a millimetre moves the fine copy by ~0.1 (the plain one by 0.001); far away it saturates
    assert raw[1, 4] - raw[0, 4] > 0.09 and raw[0, 5] > 0.999
    with pytest.raises(SpecError, match=r"\['vel'\] are not low-dim observations.*pos, goal"):
        ResidualPolicy(BiasedReacher(), ResidualConfig(fine_scales={"vel": 0.01}))
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="fine_scales must be positive and finite"):
            ResidualConfig(fine_scales={"pos": bad}).validate()


def test_fine_scales_default_to_the_tasks_precision_scales_and_name_real_features() -> None:
    from robot_learning.sim.tasks import TASKS, make_task

    insert = RLConfig(task="insert")
    insert.apply_task_defaults()
    assert insert.residual.fine_scales == {"peg_in_hole": 0.005, "peg_yaw_error": 0.05}
    chosen = RLConfig(task="insert")
    chosen.override("residual.fine_scales", "")
    chosen.apply_task_defaults()
    assert chosen.residual.fine_scales == {}
    for name in TASKS.names():
        task = make_task(name)
        features = task.observation_features()
        assert set(task.precision_scales) <= set(features), name
        assert all(features[k].kind == "lowdim" for k in task.precision_scales), name


# ---- learning ------------------------------------------------------------------------------------
def test_ppo_learns_to_cancel_the_base_error(tmp_path: Path) -> None:
    policy = reach_policy("clip")
    before = success_rate(policy)
    config = rl_config(
        "ppo",
        30_000,
        16,
        ppo=PPOConfig(
            rollout_steps=32, value_warmup_iters=2, lr_actor=1e-3, critic_hidden=(64, 64)
        ),
    )
    book = train_ppo(config, policy, tmp_path / "ppo", resume=False, env=ReachEnv(policy, 16))
    after = success_rate(policy)
    assert before < 0.1
    assert after >= 0.8, f"PPO success {before:.2f} -> {after:.2f} after {book.env_steps} steps"


def reach_demos(policy: ResidualPolicy, episodes: int = 32) -> ReplayBuffer:
    """Transitions of the expert (the base plus the residual that cancels its error)."""
    env = ReachEnv(policy, episodes, seed=7)
    buffer = ReplayBuffer(episodes * HORIZON, policy.feature_dim, policy.action_dim)
    raw = env.reset()
    expert = np.full((episodes, 2), EXPERT_UNIT, np.float32)
    for _ in range(HORIZON):
        result = env.step(expert)
        nxt = np.where(result.truncated[:, None], result.final_raw_features, result.raw_features)
        buffer.add(raw, expert, result.reward, result.terminated.astype(np.float32), nxt)
        raw = result.raw_features
    return buffer


def sac_config(steps: int) -> RLConfig:
    return rl_config(
        "sac",
        steps,
        8,
        sac=SACConfig(
            batch_size=128, updates_per_step=1.0, learning_starts=400, critic_hidden=(64, 64)
        ),
    )


def test_sac_with_demonstrations_learns_to_cancel_the_base_error(tmp_path: Path) -> None:
    policy = reach_policy("tanh")
    before = success_rate(policy)
    book = train_sac(
        sac_config(4_000),
        policy,
        tmp_path / "sac",
        resume=False,
        env=ReachEnv(policy, 8),
        demos=reach_demos(policy),
    )
    after = success_rate(policy)
    assert before < 0.1
    assert after >= 0.8, f"SAC success {before:.2f} -> {after:.2f} after {book.env_steps} steps"


def test_the_sac_residual_penalty_pulls_the_deployed_residual_back_to_the_base() -> None:
    rng = np.random.default_rng(0)
    n = 128
    batch = {
        "features": torch.randn(n, 6),
        "next_features": torch.randn(n, 6),
        "residual": torch.as_tensor(rng.uniform(-1, 1, (n, 2)), dtype=torch.float32),
        "reward": torch.zeros(n),
        "done": torch.zeros(n),
    }
    modes = {}
    for penalty in (0.0, 1.0):
        torch.manual_seed(0)
        policy = reach_policy("tanh")
        with torch.no_grad():
            policy.actor.body[-1].bias[:2] = 2.0  # the deployed residual starts near the bound
        config = sac_config(0)
        config.sac.residual_penalty, config.sac.lr = penalty, 1e-2
        agent = SACAgent(policy, config)
        for _ in range(100):
            agent.update(batch, rng)
        with torch.no_grad():
            modes[penalty] = float(policy.actor.deterministic(batch["features"]).abs().mean())
    assert modes[1.0] < 0.2 and modes[0.0] > 2 * modes[1.0] + 0.2, modes


def test_online_only_sac_needs_no_demonstrations_and_learns_from_the_dense_reward(
    tmp_path: Path,
) -> None:
    policy = reach_policy("tanh")
    config = sac_config(6_000)
    config.sac.demo_fraction = 0.0
    config.validate()  # no demonstration store, and the reach reward is dense
    book = train_sac(config, policy, tmp_path / "sac", resume=False, env=ReachEnv(policy, 8))
    after = success_rate(policy)
    assert after >= 0.8, f"online SAC success {after:.2f} after {book.env_steps} steps"


# ---- resume ------------------------------------------------------------------------------------
def test_sac_resume_restores_networks_optimizers_normalizer_and_replay(tmp_path: Path) -> None:
    from robot_learning.rl.run import RunBook

    out = tmp_path / "sac"
    policy = reach_policy("tanh")
    demos = reach_demos(policy)
    train_sac(sac_config(800), policy, out, resume=False, env=ReachEnv(policy, 8), demos=demos)
    saved = {k: v.clone() for k, v in policy.actor.state_dict().items()}

    fresh = reach_policy("tanh")
    agent = SACAgent(fresh, sac_config(800))
    book = RunBook(out, sac_config(1_600), resume=True)
    tensors, info = book.load(np.random.default_rng(0))
    agent.load(tensors, info)
    assert book.env_steps == 800 and book.updates > 0
    for k, v in saved.items():
        torch.testing.assert_close(fresh.actor.state_dict()[k], v)
    np.testing.assert_array_equal(fresh.feature_stats.mean, policy.feature_stats.mean)
    adam = agent.q_opt.state_dict()["state"]
    assert adam and int(adam[0]["step"]) == book.updates
    reloaded = agent.state()[0]
    for k, v in tensors.items():
        torch.testing.assert_close(reloaded[k], v)
    replay = ReplayBuffer(sac_config(800).sac.buffer_size, fresh.feature_dim, 2)
    replay.load(out / "rl_state" / "replay.safetensors")
    assert len(replay) == 800 and np.abs(replay.data["residual"][:800]).max() > 0

    # continuing the run picks up the counters and the replay where they were
    cont = reach_policy("tanh")
    more = train_sac(sac_config(1_600), cont, out, resume=True, env=ReachEnv(cont, 8), demos=demos)
    assert more.env_steps == 1_600
    replay.load(out / "rl_state" / "replay.safetensors")
    assert len(replay) == 1_600


def test_ppo_resume_restores_optimizers_and_both_normalizers(tmp_path: Path) -> None:
    out = tmp_path / "ppo"
    policy = reach_policy("clip")
    config = rl_config("ppo", 1_024, 16, ppo=PPOConfig(rollout_steps=32, value_warmup_iters=0))
    train_ppo(config, policy, out, resume=False, env=ReachEnv(policy, 16))
    from robot_learning.rl.run import RunBook

    fresh = reach_policy("clip")
    agent = PPOAgent(fresh, config)
    book = RunBook(out, config, resume=True)
    tensors, info = book.load(np.random.default_rng(0))
    agent.load(tensors, info)
    np.testing.assert_allclose(fresh.feature_stats.var, policy.feature_stats.var)
    assert fresh.feature_stats.count == pytest.approx(policy.feature_stats.count)
    assert agent.returns.stats.count > 1
    assert int(agent.actor_opt.state_dict()["state"][0]["step"]) > 0
    for k, v in agent.state()[0].items():
        torch.testing.assert_close(v, tensors[k])
    changed = rl_config("ppo", 1_024, 16, ppo=PPOConfig(rollout_steps=64))
    with pytest.raises(ValueError, match="ppo"):
        RunBook(out, changed, resume=True)
    with pytest.raises(FileExistsError, match="--resume"):
        RunBook(out, config, resume=False)


# ---- the sim path: CLI, eval, serving ----------------------------------------------------------
def lift_env_specs() -> tuple[SpecDict, SpecDict]:
    from robot_learning.sim.env import EnvConfig, ManipulationEnv

    env = ManipulationEnv(EnvConfig(task="lift", control_hz=10.0, tactile=False))
    try:
        return env.observation_spec(), env.action_spec()
    finally:
        env.close()


def tiny_lift_base(directory: Path) -> Path:
    """An untrained tiny state diffusion policy that fits the lift env (10 Hz, tcp deltas)."""
    from robot_learning.policies.diffusion import DiffusionPolicy, normalization_modes
    from robot_learning.policies.diffusion_config import DiffusionConfig
    from robot_learning.policies.diffusion_io import save_diffusion
    from robot_learning.policies.normalizer import Normalizer

    obs_spec, action_spec = lift_env_specs()
    keys = ["ee_pos", "gripper_pos", "object_pos"]
    config = DiffusionConfig(
        obs_keys=keys,
        n_obs_steps=2,
        horizon=8,
        n_action_steps=4,
        unet_channels=[16, 32],
        step_embed_dim=16,
        inference_steps=2,
    )
    low, high = action_spec["action"].bounds()
    stats = {k: {"min": [-1.0] * obs_spec[k].size, "max": [1.0] * obs_spec[k].size} for k in keys}
    stats["action"] = {"min": list(low), "max": list(high)}
    for s in stats.values():
        s["mean"], s["std"] = [0.0] * len(s["min"]), [1.0] * len(s["min"])
    sub = SpecDict({k: obs_spec[k] for k in keys})
    normalizer = Normalizer.fit(stats, normalization_modes(sub, config))
    torch.manual_seed(0)
    policy = DiffusionPolicy(config, sub, action_spec, normalizer, control_hz=10.0)
    return save_diffusion(policy, directory)


def lift_obs_batch(base: Policy, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: rng.uniform(-0.5, 0.5, (batch, base.n_obs_steps, *s.shape)).astype(np.float32)
        for k, s in base.observation_spec.items()
    }


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"},
    )


def test_rl_command_trains_evaluates_and_its_policy_serves_like_any_other(tmp_path: Path) -> None:
    from robot_learning.policies import load_policy
    from robot_learning.serving.client import PolicyClient
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

    base_dir = tiny_lift_base(tmp_path / "base")
    out = tmp_path / "run"
    common = ["--base", str(base_dir), "--task", "lift", "--algo", "ppo", "--out", str(out)]
    small = ["--num-envs", "2", "--env-steps", "128", "--eval-episodes", "2", "--base-steps", "1"]
    small += ["--episode-steps", "8", "--set", "residual.fine_scales=object_pos:0.01"]
    done = run_cli("rl", *common, *small, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["env_steps"] >= 128
    # training episodes are cut at 8 steps: 64 steps per env make at least 8 episodes each
    assert summary["training_episodes"] >= 16
    assert set(summary["eval"]) == {
        "base_train",
        "residual_train",
        "base_real-proxy",
        "residual_real-proxy",
    }
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert {"train", "eval"} <= {p["kind"] for p in points}

    again = run_cli("rl", *common, *small)
    assert again.returncode == 2 and "--resume" in again.stderr
    changed = run_cli("rl", *common, *small, "--resume", "--residual-scale", "0.3")
    assert changed.returncode == 2 and "residual" in changed.stderr

    evaluated = run_cli(
        "eval", "--policy", str(out / "policy"), "--task", "lift", "--episodes", "2", "--json"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["episodes"] == 2

    policy = load_policy(out / "policy")
    assert isinstance(policy, ResidualPolicy) and policy.base.inference_steps == 1
    assert policy.config.fine_scales == {"object_pos": 0.01}
    obs = lift_obs_batch(policy, batch=1, seed=3)
    policy.reset()
    local = policy.predict_chunk(obs)[0]
    served = load_policy(out / "policy")
    server = ServerThread(PolicyServer({"residual": served}, max_wait_ms=1))
    with server, PolicyClient(server.url, request_timeout_s=30) as client:
        assert client.policy_info()["chunk_len"] == 1
        reply = client.infer({k: v[0] for k, v in obs.items()})
    np.testing.assert_allclose(reply.actions, local, atol=1e-5)


def test_a_policy_teleop_records_teacher_rollouts_with_cameras_for_distillation(
    tmp_path: Path,
) -> None:
    from robot_learning.data.store import EpisodeStore
    from robot_learning.policies.scripted import ScriptedLiftPolicy

    base_dir = ScriptedLiftPolicy(control_hz=10.0).save(tmp_path / "scripted")
    from robot_learning.policies import load_policy

    teacher = ResidualPolicy(load_policy(base_dir), ResidualConfig(), base_dir=base_dir)
    with torch.no_grad():
        for p in teacher.actor.parameters():
            p.zero_()
    save_residual(teacher, tmp_path / "teacher")
    common = ["collect", "--robot", "sim:lift", "--teleop", "policy", "--no-keys", "--no-realtime"]
    common += ["--teleop-opt", f"path={tmp_path / 'teacher'}", "--fps", "10", "--json"]
    store = tmp_path / "student_data"
    done = run_cli(
        *common, "--episodes", "2", "--successes-only", "--cameras", "scene", "--out", str(store)
    )
    assert done.returncode == 0, done.stderr
    with EpisodeStore.open(store) as s:
        assert s.n_episodes == 2
        assert all(m["success"] for m in s.episodes_meta())
        assert s.features["scene_rgb"].shape == (96, 96, 3)
        assert s.read_episode(0, ["scene_rgb"])["scene_rgb"].std() > 0

    # a policy that never succeeds in 5 steps: every attempt is discarded, then it gives up
    hopeless = run_cli(
        *common,
        "--episodes",
        "1",
        "--successes-only",
        "--cameras",
        "none",
        "--max-steps",
        "5",
        "--out",
        str(tmp_path / "none"),
    )
    assert hopeless.returncode == 0, hopeless.stderr
    summary = json.loads(hopeless.stdout)
    assert summary["episodes_saved"] == 0 and summary["episodes_discarded"] == 10
    assert "gives up after 10 attempts" in hopeless.stderr


def test_settings_are_overridden_by_name_with_their_types_and_bad_ones_are_named() -> None:
    config = RLConfig()
    config.override("ppo.lr_actor", "1e-4")
    config.override("sac.num_q", "4")
    config.override("residual.hidden", "64,64")
    config.override("ppo.normalize_reward", "false")
    assert config.ppo.lr_actor == 1e-4 and config.sac.num_q == 4
    assert config.residual.hidden == (64, 64) and config.ppo.normalize_reward is False
    config.override("residual.fine_scales", "peg_in_hole:0.005, peg_yaw_error:5e-2")
    assert config.residual.fine_scales == {"peg_in_hole": 0.005, "peg_yaw_error": 0.05}
    config.override("residual.fine_scales", "none")
    assert config.residual.fine_scales is None
    with pytest.raises(ValueError, match="expected KEY:SCALE"):
        config.override("residual.fine_scales", "peg_in_hole")
    with pytest.raises(ValueError, match="unknown field 'lr'; ppo has: rollout_steps"):
        config.override("ppo.lr", "1")
    with pytest.raises(ValueError, match="SECTION one of ppo, sac, residual"):
        config.override("train.steps", "1")
    with pytest.raises(ValueError, match=r"sac\.num_q=two"):
        config.override("sac.num_q", "two")
    with pytest.raises(ValueError, match="use --reward sparse, or train online only"):
        RLConfig(algo="sac", reward="progress", demos="store").validate()
    with pytest.raises(ValueError, match=r"needs --demos STORE \(demonstrations fill 50%"):
        RLConfig(algo="sac").validate()
    RLConfig(algo="sac", reward="progress", sac=SACConfig(demo_fraction=0.0)).validate()
    with pytest.raises(ValueError, match=r"residual_penalty must be >= 0, got -1\.0"):
        RLConfig(algo="sac", demos="store", sac=SACConfig(residual_penalty=-1.0)).validate()
    with pytest.raises(ValueError, match=r"demo_fraction must be in \[0, 1\), got 1.0"):
        RLConfig(algo="sac", demos="store", sac=SACConfig(demo_fraction=1.0)).validate()
    with pytest.raises(ValueError, match="episode_steps must be >= 1"):
        RLConfig(episode_steps=0).validate()
