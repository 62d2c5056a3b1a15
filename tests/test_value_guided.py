"""Value-guided policy selection (V-GPS): wrapper, offline critic, ``robot-learning value``.

Data comes from the real MuJoCo lift task: scripted demonstrations (successes) plus episodes
driven by the same expert with large action noise (failures), labelled by the sim through
``collect``. The base is a small untrained diffusion policy: its samples differ, so selection
among them is not trivial.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_learning.cli.main import main as cli_main
from robot_learning.data.stats import dataset_stats
from robot_learning.data.store import EpisodeStore
from robot_learning.policies import load_policy
from robot_learning.policies.base import Policy
from robot_learning.policies.diffusion import DiffusionPolicy, normalization_modes
from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.diffusion_io import save_diffusion
from robot_learning.policies.normalizer import Normalizer
from robot_learning.policies.scripted import ScriptedLiftPolicy
from robot_learning.policies.value import (
    IQLConfig,
    QFunction,
    Transitions,
    load_transitions,
    q_config_for,
    train_q,
)
from robot_learning.policies.value.language import HashedBagOfWords
from robot_learning.policies.value.offline_q import pessimistic_q
from robot_learning.policies.value.q_network import QConfig
from robot_learning.policies.value_guided import ValueGuidedPolicy, save_value_guided
from robot_learning.serving.client import PolicyClient
from robot_learning.serving.remote_policy import RemotePolicy
from robot_learning.serving.server import PolicyServer
from robot_learning.serving.thread import ServerThread
from robot_learning.specs import FeatureSpec, SpecDict

STATE_KEYS = ["ee_pos", "ee_quat", "gripper_pos", "object_pos", "object_quat"]
EPISODES = 10  # of each kind
NOISE = 1.0  # expert action noise (fraction of the per-step bound) that makes lift fail
ACTION_SCALE = np.array([0.05] * 3 + [0.3] * 3 + [0.0], np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small models run fastest on one thread, and the tests share two busy cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def collect(out: Path, *extra: str) -> None:
    args = ["collect", "--robot", "sim:lift", "--teleop", "scripted", "--no-realtime"]
    args += ["--no-keys", "--cameras", "none", "--episodes", str(EPISODES), "--out", str(out)]
    assert cli_main([*args, "-q", *extra]) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vgps") / "lift"
    collect(path, "--seed", "0")
    collect(path, "--seed", "100", "--resume", "--teleop-opt", f"noise_std={NOISE}")
    return path


def labels(store: Path) -> list[bool]:
    with EpisodeStore.open(store) as s:
        return [bool(m["success"]) for m in s.episodes_meta()]


@pytest.fixture(scope="module")
def held_out(store: Path) -> list[int]:
    """The last two successful and the last two failed episodes: never trained on."""
    done = labels(store)
    wins = [i for i, ok in enumerate(done) if ok]
    losses = [i for i, ok in enumerate(done) if not ok]
    assert len(wins) >= 6 and len(losses) >= 6, f"unexpected sim labels {done}"
    return wins[-2:] + losses[-2:]


@pytest.fixture(scope="module")
def base_dir(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small diffusion policy for the store's features (untrained: its samples differ)."""
    cfg = DiffusionConfig(
        obs_keys=STATE_KEYS,
        n_obs_steps=2,
        horizon=8,
        n_action_steps=4,
        unet_channels=[16, 32],
        step_embed_dim=16,
        inference_steps=2,
    )
    with EpisodeStore.open(store) as s:
        stats, spec, fps = dataset_stats(s, write=False)["features"], s.features, s.fps
    modes = normalization_modes(spec, cfg)
    normalizer = Normalizer.fit(stats, modes, {k: spec[k].shape for k in modes})
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg, spec, spec, normalizer, control_hz=fps)
    return save_diffusion(policy, tmp_path_factory.mktemp("base") / "diffusion")


@pytest.fixture(scope="module")
def critic(store: Path, base_dir: Path, held_out: list[int]) -> tuple[QFunction, Transitions]:
    """The critic trained on every episode but the held-out ones, and the held-out data."""
    with EpisodeStore.open(store) as s:
        config = q_config_for(load_policy(base_dir), s, hidden=[128, 128])
        train_eps = [i for i in range(s.n_episodes) if i not in held_out]
    q, summary = train_q(load_transitions(store, config, train_eps), config, IQLConfig(steps=1500))
    assert summary.steps == 1500 and summary.q_mean_success > summary.q_mean_failure
    return q, load_transitions(store, config, held_out)


def window_batch(data: Transitions, rows: np.ndarray) -> dict[str, Any]:
    return {k: np.asarray(v)[rows] for k, v in data.obs.items()}


class NoisyPolicy(Policy):
    """Random chunks (one generator for the whole batch); records what it was asked."""

    def __init__(self) -> None:
        self.observation_spec = SpecDict(
            {
                "state": FeatureSpec((3,), "float32", "lowdim"),
                "task": FeatureSpec((), "str", "language"),
            }
        )
        self.action_spec = SpecDict({"action": FeatureSpec((2,), "float32", "lowdim")})
        self.n_obs_steps, self.chunk_len, self.n_action_steps = 2, 5, 3
        self.control_hz, self.supports_prefix = 15.0, True
        self.rng = np.random.default_rng(0)
        self.calls: list[tuple[dict[str, Any], np.ndarray | None, np.ndarray]] = []

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        batch = self.check_batch(obs)
        out = self.rng.normal(size=(batch, self.chunk_len, 2)).astype(np.float32)
        self.calls.append((dict(obs), prefix, out))
        return out


class PrefersTarget:
    """A hand-built critic: the closer a chunk's first action is to ``target``, the better."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target

    def score(self, obs: Mapping[str, Any], chunks: np.ndarray) -> np.ndarray:
        return -np.abs(chunks[:, 0] - self.target).sum(axis=1)


class MustNotScore:
    def score(self, obs: Mapping[str, Any], chunks: np.ndarray) -> np.ndarray:
        raise AssertionError("K=1 must not score anything")


def test_one_sample_returns_exactly_the_base_chunk(base_dir: Path, critic: Any) -> None:
    base = load_policy(base_dir)
    _, held = critic
    obs = window_batch(held, np.arange(3))
    prefix = np.full((3, 2, 7), np.nan, np.float32)
    prefix[0] = 0.01
    wrapper = ValueGuidedPolicy(base, MustNotScore(), num_samples=1)
    assert (wrapper.n_obs_steps, wrapper.chunk_len, wrapper.n_action_steps) == (2, 7, 4)
    assert wrapper.observation_spec == base.observation_spec and wrapper.supports_prefix
    for p in (None, prefix):
        base.reset()
        want = base.predict_chunk(obs, p)
        base.reset()
        np.testing.assert_array_equal(wrapper.predict_chunk(obs, p), want)


def test_the_wrapper_returns_the_sample_the_critic_prefers() -> None:
    base = NoisyPolicy()
    target = np.array([0.3, -0.2], np.float32)
    wrapper = ValueGuidedPolicy(base, PrefersTarget(target), num_samples=16)
    obs = {"state": np.arange(24, dtype=np.float32).reshape(4, 2, 3), "task": list("abcd")}
    prefix = np.zeros((4, 2, 2), np.float32)
    got = wrapper.predict_chunk(obs, prefix)
    ((asked, asked_prefix, samples),) = base.calls  # one batched call of B*K
    assert samples.shape == (64, 5, 2) and got.shape == (4, 5, 2)
    np.testing.assert_array_equal(asked["state"], np.repeat(obs["state"], 16, axis=0))
    assert asked["task"] == [t for t in "abcd" for _ in range(16)]
    assert asked_prefix is not None and asked_prefix.shape == (64, 2, 2)
    per_row = samples.reshape(4, 16, 5, 2)
    for b in range(4):
        best = np.abs(per_row[b, :, 0] - target).sum(axis=1).argmin()
        np.testing.assert_array_equal(got[b], per_row[b, best])
    assert wrapper.last_scores is not None and wrapper.last_scores.shape == (4, 16)


def test_instructions_are_embedded_deterministically_and_feed_the_critic() -> None:
    texts = ["Pick up the red cube", "pick up the red cube!", "push the blue block"]
    emb = HashedBagOfWords(32)(texts)
    np.testing.assert_array_equal(emb[0], emb[1])  # case and punctuation do not matter
    assert np.abs(emb[0] - emb[2]).max() > 0 and np.allclose(np.linalg.norm(emb, axis=1), 1)
    config = QConfig(["state"], [3], 2, n_obs_steps=2, action_horizon=3, language_key="task")
    norm = Normalizer()
    for key, size in (("state", 3), ("action", 2)):
        norm.set(key, torch.ones(size), torch.zeros(size))
    q = QFunction(config, norm)
    obs = {"state": np.zeros((3, 2, 3), np.float32), "task": texts}
    scores = q.score(obs, np.zeros((3, 5, 2), np.float32))
    assert scores.shape == (3,)
    # equal inputs score equally up to float rounding (rows of one batch may take other kernels)
    assert np.isclose(scores[0], scores[1], rtol=1e-5, atol=1e-6)
    assert not np.isclose(scores[0], scores[2], rtol=1e-5, atol=1e-6)


def test_offline_critic_ranks_successful_actions_above_failed_ones_on_held_out_windows(
    critic: tuple[QFunction, Transitions],
) -> None:
    q, held = critic
    scores = pessimistic_q(q, held)
    win, loss = scores[held.success], scores[~held.success]
    assert len(win) > 20 and len(loss) > 100
    auc = float((win[:, None] > loss[None, :]).mean())
    assert auc > 0.75, f"held-out AUC {auc:.3f}; success {win.mean():.3f} fail {loss.mean():.3f}"
    # same held-out states: the demonstrated chunk against the kind of chunk that failed
    rows = np.flatnonzero(held.success)
    chunks = held.actions[rows]
    noise = np.random.default_rng(0).normal(0.0, NOISE, chunks.shape).astype(np.float32)
    noisy = chunks + noise * ACTION_SCALE
    obs = window_batch(held, rows)
    better = q.score(obs, chunks) > q.score(obs, noisy)
    assert better.mean() > 0.8, f"the demonstrated chunk won only {better.mean():.0%}"


def test_checkpoint_round_trip_and_serving_give_identical_selections(
    base_dir: Path, critic: tuple[QFunction, Transitions], tmp_path: Path
) -> None:
    q, held = critic
    wrapper = ValueGuidedPolicy(load_policy(base_dir), q, num_samples=6, base_dir=base_dir)
    out = save_value_guided(wrapper, tmp_path / "vg")
    config = json.loads((out / "config.json").read_text())
    assert config["policy"] == "value_guided" and config["num_samples"] == 6
    assert (out / "q.safetensors").is_file() and (out / "q_normalizer.safetensors").is_file()
    assert (out / "base" / "config.json").is_file()
    loaded = load_policy(out)
    assert isinstance(loaded, ValueGuidedPolicy) and loaded.num_samples == 6
    assert load_policy(out, num_samples=3).num_samples == 3  # type: ignore[attr-defined]
    obs = window_batch(held, np.arange(0, len(held), 37)[:5])
    wrapper.reset()
    want = wrapper.predict_chunk(obs)
    assert wrapper.last_scores is not None and np.ptp(wrapper.last_scores, axis=1).min() > 0
    np.testing.assert_array_equal(loaded.predict_chunk(obs), want)
    np.testing.assert_array_equal(loaded.last_scores, wrapper.last_scores)
    one = {k: v[:1] for k, v in obs.items()}
    wrapper.reset()
    with ServerThread(PolicyServer({"vg": load_policy(out)})) as thread:
        remote = RemotePolicy(PolicyClient(thread.url))
        assert remote.chunk_len == 7 and remote.supports_prefix
        np.testing.assert_array_equal(remote.predict_chunk(one), wrapper.predict_chunk(one))
        remote.client.close()


def test_value_command_writes_a_loadable_checkpoint(
    store: Path, base_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vg"
    args = ["value", "--data", str(store), "--base", str(base_dir), "--out", str(out)]
    assert cli_main([*args, "--samples", "4", "--steps", "30", "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["critic_steps"] == 30 and summary["episodes"] == 2 * EPISODES
    policy = load_policy(out)
    assert isinstance(policy, ValueGuidedPolicy) and policy.num_samples == 4


def synthetic_store(path: Path, real: Path, keys: list[str], success: bool | None) -> Path:
    """Two short episodes with ``keys`` of the real store's features, via the writer API."""
    with EpisodeStore.open(real) as s:
        features = SpecDict({k: s.features[k] for k in [*keys, "action"]})
    with EpisodeStore.create(path, features, fps=20.0, robot="synthetic") as store:
        for _ in range(2):
            writer = store.new_episode(task="lift")
            for t in range(6):
                values = {k: np.zeros(features[k].shape, np.float32) for k in features}
                writer.add_step(values, 0.05 * t)
            writer.commit(success=success)
    return path


def test_value_command_refuses_stores_and_bases_that_do_not_fit(
    store: Path, base_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refusal(data: Path, base: Path) -> str:
        args = ["value", "--data", str(data), "--base", str(base), "--out", str(tmp_path / "o")]
        assert cli_main(args) == 2
        assert not (tmp_path / "o").exists()
        return capsys.readouterr().err

    unlabelled = synthetic_store(tmp_path / "unlabelled", store, STATE_KEYS, None)
    err = refusal(unlabelled, base_dir)
    assert "no success metadata" in err and "true or false" in err
    no_cube = synthetic_store(
        tmp_path / "no_cube", store, ["ee_pos", "ee_quat", "gripper_pos"], True
    )
    err = refusal(no_cube, base_dir)
    assert "'object_pos'" in err and "the store records: ee_pos, ee_quat, gripper_pos" in err
    scripted = ScriptedLiftPolicy(control_hz=10.0).save(tmp_path / "scripted")
    err = refusal(store, scripted)
    assert "20 Hz" in err and "10 Hz" in err
