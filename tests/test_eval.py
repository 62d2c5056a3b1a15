"""Policy evaluation on real MuJoCo vector envs: exact seeded episodes, batching, videos, CLI.

The policy here is a genuine :class:`Policy` (specs, observation windows, chunks): a stateless
proportional controller for ``lift`` that hovers over the cube, descends, closes and raises. It
succeeds on most seeds within ~20 steps and fails on some, so both outcomes are exercised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import pytest

from robot_learning.cli.main import main
from robot_learning.eval.env_config import env_config_for
from robot_learning.eval.rollout import EvalResult, evaluate
from robot_learning.eval.stats import latency_summary, percentile, wilson_interval
from robot_learning.policies.base import Policy
from robot_learning.sim.env import ManipulationEnv
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

MAX_STEPS = 22  # short enough that some seeds time out: both outcomes occur


def lift_action(ee: np.ndarray, obj: np.ndarray, grip: float) -> np.ndarray:
    """Hover above the cube, descend, close, then lift once the fingers have closed."""
    a = np.zeros(7, dtype=np.float32)
    if grip > 0.2:
        a[2] = 0.05 if grip > 0.35 else 0.0
        a[6] = 1.0
    elif np.linalg.norm(obj[:2] - ee[:2]) > 0.008:
        a[:3] = np.clip(np.array([obj[0], obj[1], obj[2] + 0.08]) - ee, -0.05, 0.05)
    else:
        target = np.array([obj[0], obj[1], obj[2] + 0.004])
        a[:3] = np.clip(target - ee, -0.05, 0.05)
        a[6] = 1.0 if abs(ee[2] - target[2]) < 0.006 else 0.0
    return a


class LiftController(Policy):
    """Chunk = the controller's action for the newest observation, repeated ``chunk_len`` times."""

    def __init__(
        self,
        n_obs_steps: int = 2,
        chunk_len: int = 4,
        n_action_steps: int = 2,
        extra: Mapping[str, FeatureSpec] | None = None,
    ) -> None:
        lowdim = {
            name: FeatureSpec(shape, "float32", "lowdim")
            for name, shape in (("ee_pos", (3,)), ("object_pos", (3,)), ("gripper_pos", (1,)))
        }
        self.observation_spec = SpecDict({**lowdim, **(extra or {})})
        self.action_spec = SpecDict({"action": FeatureSpec((7,), "float32", "lowdim")})
        self.n_obs_steps = n_obs_steps
        self.chunk_len = chunk_len
        self.n_action_steps = n_action_steps
        self.batch_sizes: list[int] = []
        self.windows: list[dict[str, np.ndarray]] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        batch = self.check_batch(obs)
        self.batch_sizes.append(batch)
        self.windows.append({k: np.array(v) for k, v in obs.items()})
        out = np.empty((batch, self.chunk_len, 7), dtype=np.float32)
        for b in range(batch):
            a = lift_action(
                obs["ee_pos"][b, -1], obs["object_pos"][b, -1], obs["gripper_pos"][b, -1, 0]
            )
            out[b] = a
        return out


def reference_episodes(
    seeds: range, n_action_steps: int, max_steps: int
) -> list[tuple[int, bool, int]]:
    """The same controller on one plain env: what episode ``seed`` must give, per seed."""
    env = ManipulationEnv(task="lift", tactile=False, max_episode_steps=max_steps)
    out = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            success, steps, done = False, 0, False
            while not done:
                if steps % n_action_steps == 0:
                    action = lift_action(obs["ee_pos"], obs["object_pos"], obs["gripper_pos"][0])
                obs, _, terminated, truncated, info = env.step(action)
                steps += 1
                success |= bool(info["is_success"])
                done = terminated or truncated
            out.append((seed, success, steps))
    finally:
        env.close()
    return out


def outcomes(result: EvalResult) -> list[tuple[int, bool, int]]:
    return [(ep.seed, ep.success, ep.length) for ep in result.per_episode]


# ---- stats ---------------------------------------------------------------------------------------
def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_percentile_helpers() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert math.isnan(percentile([], 50))
    summary = latency_summary([10.0] * 99 + [1000.0])
    assert summary["latency_ms_p50"] == 10.0
    assert summary["latency_ms_mean"] == pytest.approx(19.9)
    assert 10.0 < summary["latency_ms_p99"] <= 1000.0


# ---- env config from the policy's specs ----------------------------------------------------------
def test_env_config_follows_policy_specs() -> None:
    cams = {
        "wrist_rgb": FeatureSpec((64, 80, 3), "uint8", "rgb"),
        "tactile_left": FeatureSpec((4, 3, 3), "float32", "tactile"),
    }
    policy = LiftController(extra=cams)
    policy.control_hz = 10.0
    cfg = env_config_for(policy, "lift", variant="real-proxy", max_steps=7)
    assert cfg.cameras == ("wrist",) and cfg.image_size == (64, 80) and not cfg.depth
    assert cfg.tactile and cfg.tactile_grid == (4, 3)
    assert cfg.control_hz == 10.0 and cfg.variant == "real-proxy" and cfg.max_episode_steps == 7
    state_only = env_config_for(LiftController(), "lift")
    assert state_only.cameras == () and not state_only.tactile


# ---- rollouts ------------------------------------------------------------------------------------
def test_vectorized_eval_is_exact_batched_and_reproducible(tmp_path: Path) -> None:
    episodes, n_exec = 5, 2
    policy = LiftController(n_obs_steps=3, n_action_steps=n_exec)
    seen: list[tuple[int, int]] = []
    result = evaluate(
        policy,
        "lift",
        episodes,
        num_envs=2,
        seed=3,
        max_steps=MAX_STEPS,
        video_dir=tmp_path,
        videos=1,
        progress=lambda ep, done, total: seen.append((done, total)),
    )
    # exactly `episodes` episodes, episode k seeded seed + k, each as on a plain env
    assert [ep.seed for ep in result.per_episode] == [3, 4, 5, 6, 7]
    assert seen == [(k, episodes) for k in range(1, episodes + 1)]
    expected = reference_episodes(range(3, 8), n_exec, MAX_STEPS)
    assert outcomes(result) == expected
    assert 0 < result.successes < episodes  # some seeds need more than MAX_STEPS steps
    assert result.success_rate == result.successes / episodes
    assert (result.ci95_low, result.ci95_high) == wilson_interval(result.successes, episodes)
    assert result.episode_len_mean == pytest.approx(np.mean([e[2] for e in expected]))

    # batching: both envs share calls; one chunk per n_action_steps steps of every episode
    assert policy.resets == 1
    assert result.chunks == len(policy.batch_sizes)
    assert policy.batch_sizes[0] == 2 and max(policy.batch_sizes) == 2
    assert sum(policy.batch_sizes) == sum(math.ceil(e[2] / n_exec) for e in expected)
    assert result.chunks < sum(policy.batch_sizes)
    assert math.isfinite(result.latency_ms_p50) and result.latency_ms_p99 >= result.latency_ms_p50

    # edge padding: the first window repeats the reset observation, newest last
    first = policy.windows[0]
    assert first["ee_pos"].shape == (2, 3, 3)
    for name in ("ee_pos", "object_pos", "gripper_pos"):
        assert np.array_equal(first[name][:, 0], first[name][:, 1])
        assert np.array_equal(first[name][:, 1], first[name][:, 2])
    ref_env = ManipulationEnv(task="lift", tactile=False)
    ref_obs, _ = ref_env.reset(seed=3)
    ref_env.close()
    assert np.allclose(first["object_pos"][0, -1], ref_obs["object_pos"])
    padded_rows = sum(
        int(np.all(w["ee_pos"][b, 0] == w["ee_pos"][b, -1]))
        for w in policy.windows
        for b in range(w["ee_pos"].shape[0])
    )
    assert padded_rows >= episodes  # every episode starts with a padded window

    # one env in-process gives the same per-episode outcomes
    single = evaluate(
        LiftController(n_obs_steps=3),
        "lift",
        episodes,
        num_envs=1,
        seed=3,
        max_steps=MAX_STEPS,
        videos=0,
    )
    assert outcomes(single) == outcomes(result)

    # video of the first episode (state-only policy: frames from env.render())
    assert result.videos == [result.per_episode[0].video] and result.per_episode[1].video is None
    frames = imageio.mimread(result.videos[0], memtest=False)
    assert len(frames) == result.per_episode[0].length + 1  # reset frame + one per step
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3


@pytest.mark.render
def test_video_from_camera_observations_side_by_side(tmp_path: Path) -> None:
    cams = {f"{c}_rgb": FeatureSpec((48, 64, 3), "uint8", "rgb") for c in ("scene", "wrist")}
    policy = LiftController(n_obs_steps=1, extra=cams)
    result = evaluate(
        policy, "lift", 1, num_envs=1, seed=0, max_steps=6, video_dir=tmp_path, videos=2
    )
    assert policy.windows[0]["scene_rgb"].shape == (1, 1, 48, 64, 3)
    assert policy.windows[0]["scene_rgb"].dtype == np.uint8
    assert len(result.videos) == 1  # only as many videos as episodes
    frames = imageio.mimread(result.videos[0], memtest=False)
    assert len(frames) == result.per_episode[0].length + 1
    assert frames[0].shape == (48, 128, 3)  # scene | wrist


def test_spec_mismatch_is_refused_naming_the_feature() -> None:
    policy = LiftController(extra={"force_torque": FeatureSpec((6,), "float32", "lowdim")})
    with pytest.raises(SpecError, match="force_torque"):
        evaluate(policy, "lift", 1, num_envs=1, max_steps=5)
    assert policy.batch_sizes == []  # refused before any rollout


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_action_steps"):
        evaluate(LiftController(chunk_len=4), "lift", 1, n_action_steps=5)
    with pytest.raises(ValueError, match="episodes"):
        evaluate(LiftController(), "lift", 0)


# ---- CLI -----------------------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["eval", "--policy", str(missing), "--task", "lift", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and str(missing) in err and "Traceback" not in err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--policy", str(empty), "--task", "lift", "--episodes", "1"]) == 2
    assert "not a policy checkpoint" in capsys.readouterr().err

    (empty / "config.json").write_text("{}")
    assert main(["eval", "--policy", str(empty), "--task", "fly", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'fly'" in err and "lift" in err and "push" in err

    assert main(["eval", "--policy", str(empty), "--task", "lift", "--episodes", "0"]) == 2


def test_cli_eval_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real command on the real sim; only the checkpoint loader (another module) is stubbed."""
    import robot_learning.policies as policies

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    loaded: list[tuple[Path, dict[str, Any]]] = []

    def load_policy(path: Path, device: str = "cpu", **overrides: Any) -> Policy:
        loaded.append((Path(path), overrides))
        return LiftController(extra={"tactile_left": FeatureSpec((8, 6, 3), "float32", "tactile")})

    monkeypatch.setattr(policies, "load_policy", load_policy, raising=False)
    argv = ["eval", "--policy", str(ckpt), "--task", "lift", "--episodes", "2", "--num-envs", "1"]
    assert main([*argv, "--videos", "0", "--steps", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert loaded == [(ckpt, {"inference_steps": 5})]
    assert report["episodes"] == 2 and report["successes"] == 2 and report["success_rate"] == 1.0
    assert report["success_ci95_low"] == pytest.approx(wilson_interval(2, 2)[0])
    assert report["task"] == "lift" and report["variant"] == "default"
    assert report["policy"] == str(ckpt) and report["videos"] == []
    for key in (
        "episode_len_mean",
        "latency_ms_p50",
        "latency_ms_p99",
        "latency_ms_mean",
        "wall_s",
    ):
        assert isinstance(report[key], float)
    saved = json.loads((ckpt / "eval" / "lift-default" / "eval.json").read_text())
    assert saved["per_episode"] == report["per_episode"]

    # a policy that wants a feature the env lacks: one-line error naming it
    def wrong(path: Path, device: str = "cpu", **overrides: Any) -> Policy:
        return LiftController(extra={"force_torque": FeatureSpec((6,), "float32", "lowdim")})

    monkeypatch.setattr(policies, "load_policy", wrong)
    assert main([*argv, "--videos", "0"]) == 2
    err = capsys.readouterr().err
    assert "force_torque" in err and "does not fit" in err and "Traceback" not in err


# ---- chunk execution under latency -----------------------------------------------------------
def test_inference_delay_stalls_naive_execution_but_not_rtc() -> None:
    """100 ms at 20 Hz: naive waits two ticks per chunk; rtc asks early and never stalls."""
    runs = {
        mode: evaluate(
            LiftController(chunk_len=8, n_action_steps=4),
            "lift",
            2,
            num_envs=1,
            seed=0,
            videos=0,
            max_steps=30,
            execution=mode,
            inference_delay_ms=100.0,
        )
        for mode in ("rtc", "naive")
    }
    rtc, naive = runs["rtc"].execution, runs["naive"].execution
    assert rtc["stalls"] == 0 and rtc["dropped_actions"] > 0
    assert naive["stalls"] >= 2 * 4  # two held ticks per chunk after the first, per episode
    # every tick without an action was held by the safety layer (incl. each episode's start)
    assert runs["naive"].safety["no_action"] == naive["stalls"] + 2 * 2
    assert runs["rtc"].safety["no_action"] == 2 * 2
    assert naive["boundary_ticks"] > 0 and naive["within_ticks"] > 0
    with pytest.raises(ValueError, match="inference_delay_ms"):
        evaluate(LiftController(), "lift", 1, inference_delay_ms=-1.0)


# ---- through a policy server -----------------------------------------------------------------
def test_cli_eval_through_a_server_matches_local(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``eval --server``: the same seeded episodes, the same outcomes as the local policy; a
    wrong token and a dead server are one-line errors."""
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server = PolicyServer({"lift": LiftController()}, token="s3cret")
    with ServerThread(server) as thread:
        argv = ["eval", "--server", thread.url, "--task", "lift", "--episodes", "3", "--seed", "5"]
        argv += ["--videos", "0", "--out", str(tmp_path / "out")]
        assert main([*argv, "--token-file", str(token), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        bad = tmp_path / "bad"
        bad.write_text("wrong")
        assert main([*argv, "--token-file", str(bad)]) == 2
        err = capsys.readouterr().err
        assert "--server" in err and "401" in err and "Traceback" not in err
        url = thread.url
    assert report["policy"] == url and report["episodes"] == 3
    assert [e["seed"] for e in report["per_episode"]] == [5, 6, 7]
    full = evaluate(LiftController(), "lift", 3, num_envs=2, seed=5, videos=0)
    assert [(e["success"], e["length"]) for e in report["per_episode"]] == [
        (e.success, e.length) for e in full.per_episode
    ]
    assert main([*argv[:2], url, *argv[3:]]) == 2  # the server is gone
    assert "--server" in capsys.readouterr().err
