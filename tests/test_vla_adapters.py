"""VLA adapters (``openvla_tokens``, ``flow_vla``) on tiny random checkpoints built locally.

What is checked: the checkpoint round trip through ``load_policy``, the exact token -> bin ->
robot-unit mapping (hand-computed), greedy decoding restricted to action tokens (logits forced
through a hook on the LM head), flow sampling conventions and seeding, refusal of broken or
mismatched checkpoints, spec checks on observation batches, loading with the network disabled,
and serving through the real policy server. No published weights are involved.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_learning.policies import load_policy
from robot_learning.policies.adapters import (
    ActionNormStats,
    FlowVLAPolicy,
    OpenVLATokenPolicy,
    build_tiny_flow_vla,
    build_tiny_openvla,
    load_flow_vla,
    load_openvla_tokens,
)
from robot_learning.policies.adapters.action_bins import (
    bin_centers,
    normalized_to_tokens,
    tokens_to_normalized,
)
from robot_learning.policies.adapters.flow_expert import euler_sample, flow_matching_loss
from robot_learning.policies.adapters.tiny import tiny_specs
from robot_learning.policies.checkpoint import CheckpointError
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

TASKS = ["pick the red cube", "open the drawer slowly", "push the blue block to the left"]
STATS = ActionNormStats(
    q01=(-0.5, -0.1, 0.0, -2.0, -0.03, -0.04, 0.0),
    q99=(1.5, 0.3, 1.0, 2.0, 0.05, 0.04, 1.0),
    mask=(True, True, True, True, True, True, False),
)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the tests share the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def openvla_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_openvla(tmp_path_factory.mktemp("vla") / "openvla", norm_stats=STATS)


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stats = {"action": {"mean": [0.1] * 7, "std": [0.2] * 7}}
    return build_tiny_flow_vla(tmp_path_factory.mktemp("vla") / "flow", chunk_len=8, stats=stats)


def observations(batch: int, size: int = 64, seed: int = 0, state: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    obs: dict[str, Any] = {
        "image": rng.integers(0, 256, (batch, 1, size, size, 3), dtype=np.uint8),
        "task": [TASKS[i % len(TASKS)] for i in range(batch)],
    }
    if state:
        obs["state"] = rng.normal(size=(batch, 1, 4)).astype(np.float32)
    return obs


def copy_checkpoint(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def edit_config(directory: Path, edit: Any) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


# ---- the action-token mapping -------------------------------------------------------------------
def test_token_to_bin_to_action_mapping_is_exact_on_hand_computed_cases() -> None:
    end = 1000  # ids 744..999 are the action tokens
    # bin centre i is -1 + (2 i + 1) / 255; token end - 1 is bin 0, token end - 128 is bin 127
    tokens = np.array([999, 998, 872, 745, 744])
    want = np.array([-254 / 255, -252 / 255, 0.0, 254 / 255, 254 / 255])
    np.testing.assert_allclose(tokens_to_normalized(tokens, end), want, rtol=0, atol=1e-12)
    assert bin_centers().shape == (255,)
    # q01/q99 scaling: 0.5 (x + 1) (q99 - q01) + q01 where masked, x itself where not
    stats = ActionNormStats(q01=(-0.5, 2.0), q99=(1.5, 4.0), mask=(True, False))
    x = np.array([[-254 / 255, 0.0], [0.0, 254 / 255]])
    want_units = np.array([[-254 / 255 + 0.5, 0.0], [0.5, 254 / 255]])
    np.testing.assert_allclose(stats.unnormalize(x), want_units, rtol=0, atol=1e-12)
    # OpenVLA's encoding inverts the decoding on every bin centre
    centres = bin_centers()
    np.testing.assert_allclose(
        tokens_to_normalized(normalized_to_tokens(centres, end), end), centres, atol=1e-12
    )


def test_norm_stats_refuse_inconsistent_lengths() -> None:
    with pytest.raises(ValueError, match="q01 has 2, q99 3"):
        ActionNormStats.from_json({"q01": [0, 0], "q99": [1, 1, 1]})


# ---- openvla_tokens ---------------------------------------------------------------------------
def test_openvla_round_trip_gives_deterministic_actions_batched_like_single(
    openvla_dir: Path,
) -> None:
    policy = load_policy(openvla_dir)
    assert isinstance(policy, OpenVLATokenPolicy)
    assert (policy.chunk_len, policy.n_action_steps, policy.supports_prefix) == (1, 1, False)
    obs = observations(3)
    actions = policy.predict_chunk(obs)
    assert actions.shape == (3, 1, 7) and actions.dtype == np.float32
    np.testing.assert_array_equal(actions, policy.predict_chunk(obs))
    np.testing.assert_array_equal(actions, load_openvla_tokens(openvla_dir).predict_chunk(obs))
    tokens = policy.predict_tokens(obs)
    assert tokens.min() >= policy.settings.action_vocab_end - 256
    assert tokens.max() < policy.settings.action_vocab_end
    for i in range(3):  # left padding: each row decodes as it would alone
        single = {"image": obs["image"][i : i + 1], "task": obs["task"][i : i + 1]}
        np.testing.assert_array_equal(policy.predict_tokens(single), tokens[i : i + 1])
    # actions lie inside the q01/q99 box (normalised dims) or [-1, 1] (the gripper)
    low = np.where(STATS.mask, STATS.q01, -1.0)
    high = np.where(STATS.mask, STATS.q99, 1.0)
    assert np.all(actions[:, 0] >= low - 1e-6) and np.all(actions[:, 0] <= high + 1e-6)
    prompt = policy.prompts(["pick the red cube"])[0]
    assert prompt == "In: What action should the robot take to pick the red cube?\nOut:"


def test_openvla_greedy_decoding_only_picks_action_tokens_and_maps_them(openvla_dir: Path) -> None:
    policy = load_openvla_tokens(openvla_dir)
    end = policy.settings.action_vocab_end
    forced = [end - 1, end - 128, end - 256, end - 2, end - 200, end - 60, end - 1]
    calls: list[int] = []

    def force(_module: Any, _inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, -1e4)
        out[..., 5] = 1e5  # a text token with the highest logit: must be ignored
        out[..., forced[len(calls)]] = 1e3
        calls.append(1)
        return out

    handle = policy.model.lm_head.register_forward_hook(force)
    try:
        actions = policy.predict_chunk(observations(1))
    finally:
        handle.remove()
    assert len(calls) == 7  # one prefill + six cached steps
    # token end - d is bin d - 1 (0..254; d = 256 clips to 254), centre -1 + (2 (d - 1) + 1) / 255
    centre = [-254 / 255, 0.0, 254 / 255, -252 / 255, 144 / 255, -136 / 255, -254 / 255]
    want = [
        0.5 * (c + 1) * (hi - lo) + lo if m else c
        for c, lo, hi, m in zip(centre, STATS.q01, STATS.q99, STATS.mask)
    ]
    np.testing.assert_allclose(actions[0, 0], np.array(want, np.float32), rtol=0, atol=1e-7)


def test_openvla_refuses_a_checkpoint_whose_action_dim_does_not_fit(
    openvla_dir: Path, tmp_path: Path
) -> None:
    bad = copy_checkpoint(openvla_dir, tmp_path)
    edit_config(bad, lambda c: c["action_spec"]["action"].update(shape=[6]))
    with pytest.raises(
        CheckpointError, match="action spec has 6 dims, the action norm stats have 7"
    ):
        load_policy(bad)


def test_openvla_refuses_overrides_and_a_flow_checkpoint(openvla_dir: Path, flow_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="no inference steps"):
        load_policy(openvla_dir, inference_steps=4)
    with pytest.raises(CheckpointError, match="names policy 'flow_vla', not 'openvla_tokens'"):
        load_openvla_tokens(flow_dir)


# ---- flow_vla ---------------------------------------------------------------------------------
def test_euler_sampler_follows_pi0_time_convention() -> None:
    """With the exact straight-path velocity ``(x_t - a) / t``, Euler lands on ``a``."""
    target = torch.tensor([[[0.3, -0.7], [1.5, 0.0]]])
    noise = torch.tensor([[[1.0, 2.0], [-1.0, 0.5]]])
    exact = lambda x, t: (x - target) / t.view(-1, 1, 1)  # noqa: E731
    torch.testing.assert_close(euler_sample(exact, noise, 3), target, atol=1e-6, rtol=0)
    t = torch.tensor([0.25])
    assert flow_matching_loss(exact, target, noise, t).item() < 1e-10
    assert flow_matching_loss(lambda x, t: x, target, noise, t).item() > 0.1


def test_flow_round_trip_seeded_noise_and_instructions(flow_dir: Path) -> None:
    policy = load_policy(flow_dir)
    assert isinstance(policy, FlowVLAPolicy)
    assert (policy.chunk_len, policy.n_action_steps, policy.supports_prefix) == (8, 8, False)
    obs = observations(2, state=True)
    first = policy.predict_chunk(obs)
    assert first.shape == (2, 8, 7) and first.dtype == np.float32 and np.all(np.isfinite(first))
    second = policy.predict_chunk(obs)  # the generator moved on: new noise
    assert not np.array_equal(first, second)
    policy.reset()
    np.testing.assert_array_equal(policy.predict_chunk(obs), first)
    np.testing.assert_array_equal(load_flow_vla(flow_dir).predict_chunk(obs), first)
    noise = np.random.default_rng(1).normal(size=(1, 8, 7)).astype(np.float32)
    one = {k: v[:1] for k, v in obs.items()}
    a = policy.predict_chunk(one, noise=noise)
    np.testing.assert_array_equal(a, policy.predict_chunk(one, noise=noise))
    other = dict(one, task=["open the drawer slowly"])
    assert np.abs(policy.predict_chunk(other, noise=noise) - a).max() > 1e-4
    assert np.abs(policy.predict_chunk(one, noise=noise + 1.0) - a).max() > 1e-4
    with pytest.raises(SpecError, match="noise has shape"):
        policy.predict_chunk(one, noise=noise[:, :4])


def test_flow_num_steps_override_changes_the_integration(flow_dir: Path) -> None:
    obs = observations(1, state=True)
    noise = np.zeros((1, 8, 7), np.float32)
    ten = load_flow_vla(flow_dir).predict_chunk(obs, noise=noise)
    one = load_policy(flow_dir, inference_steps=1)
    assert isinstance(one, FlowVLAPolicy) and one.settings.num_steps == 1
    assert np.abs(one.predict_chunk(obs, noise=noise) - ten).max() > 1e-6
    with pytest.raises(CheckpointError, match="unknown flow_vla overrides"):
        load_flow_vla(flow_dir, temperature=0.5)


def test_flow_refuses_a_mismatched_action_dim_or_head(flow_dir: Path, tmp_path: Path) -> None:
    bad = copy_checkpoint(flow_dir, tmp_path)
    edit_config(bad, lambda c: c["action_spec"]["action"].update(shape=[6]))
    with pytest.raises(CheckpointError, match=r"normalizer 'action' has shape \(7,\).*\(6,\)"):
        load_policy(bad)
    wide = copy_checkpoint(flow_dir, tmp_path / "wide")
    edit_config(wide, lambda c: c["adapter"].update(expert_width=32))
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not fit"):
        load_policy(wide)


# ---- both: broken checkpoints, specs, offline loading, serving --------------------------------
@pytest.mark.parametrize(
    "missing", ["backbone/model.safetensors", "backbone/tokenizer.json", "model.safetensors"]
)
def test_a_missing_file_is_named(openvla_dir: Path, tmp_path: Path, missing: str) -> None:
    bad = copy_checkpoint(openvla_dir, tmp_path)
    (bad / missing).unlink()
    with pytest.raises(CheckpointError, match=f"missing {missing}|lacks {missing}"):
        load_policy(bad)


def test_a_truncated_backbone_file_is_refused(flow_dir: Path, tmp_path: Path) -> None:
    bad = copy_checkpoint(flow_dir, tmp_path)
    weights = bad / "backbone" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"backbone/model\.safetensors has 1000 bytes"):
        load_policy(bad)


def test_backbone_weights_that_do_not_fit_are_refused_not_randomly_filled(
    flow_dir: Path, tmp_path: Path
) -> None:
    """transformers would initialise a missing tensor randomly; the loader refuses instead."""
    from safetensors.torch import load_file, save_file

    from robot_learning.policies.adapters.layout import file_manifest

    bad = copy_checkpoint(flow_dir, tmp_path)
    weights = bad / "backbone" / "model.safetensors"
    state = load_file(str(weights))
    dropped = next(k for k in state if "multi_modal_projector" in k)
    save_file({k: v for k, v in state.items() if k != dropped}, str(weights))
    edit_config(bad, lambda c: c["backbone"].update(files=file_manifest(bad / "backbone")))
    with pytest.raises(CheckpointError, match=r"missing or mis-shaped .*multi_modal_projector"):
        load_policy(bad)


def test_a_replaced_backbone_file_fails_hash_verification(
    openvla_dir: Path, tmp_path: Path
) -> None:
    bad = copy_checkpoint(openvla_dir, tmp_path)
    path = bad / "backbone" / "preprocessor_config.json"
    path.write_text(path.read_text().replace("0.5", "0.4"))  # same size, other bytes
    load_openvla_tokens(bad)  # sizes match: loads without verification
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        load_openvla_tokens(bad, verify_hashes=True)


def test_specs_the_adapters_cannot_read_are_refused(tmp_path: Path) -> None:
    obs, action = tiny_specs()
    depth = SpecDict({**obs.features, "depth": FeatureSpec((8, 8), "uint16", "depth")})
    with pytest.raises(CheckpointError, match="'depth' has kind 'depth'"):
        build_tiny_flow_vla(tmp_path / "a", depth, action)
    state = SpecDict({**obs.features, "state": FeatureSpec((3,), "float32", "lowdim")})
    with pytest.raises(CheckpointError, match="'state' has kind 'lowdim'"):
        build_tiny_openvla(tmp_path / "b", state, action)


@pytest.mark.parametrize("kind", ["openvla", "flow"])
def test_wrong_observation_batches_raise_spec_errors(
    openvla_dir: Path, flow_dir: Path, kind: str
) -> None:
    policy = load_policy(openvla_dir if kind == "openvla" else flow_dir)
    obs = observations(2, state=kind == "flow")
    with pytest.raises(SpecError, match="observation 'image' has shape"):
        policy.predict_chunk(dict(obs, image=obs["image"][:, :, :32]))
    with pytest.raises(SpecError, match="lacks 'task'"):
        policy.predict_chunk({k: v for k, v in obs.items() if k != "task"})
    with pytest.raises(SpecError, match="batch size 1"):
        policy.predict_chunk(dict(obs, task=obs["task"][:1]))


def test_loading_needs_no_network(
    openvla_dir: Path, flow_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert load_policy(openvla_dir).predict_chunk(observations(1)).shape == (1, 1, 7)
    assert load_policy(flow_dir).predict_chunk(observations(1, state=True)).shape == (1, 8, 7)


def test_an_adapter_is_served_by_the_policy_server(openvla_dir: Path) -> None:
    from robot_learning.serving.client import PolicyClient
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

    policy = load_policy(openvla_dir)
    obs = observations(2, seed=3)
    direct = policy.predict_chunk(obs)
    server = PolicyServer({"vla": policy}, max_batch=4)
    with ServerThread(server) as thread, PolicyClient(thread.url) as client:
        info = client.connect()["policies"]["vla"]
        assert info["observation_spec"]["task"]["kind"] == "language"
        assert (info["chunk_len"], info["supports_prefix"]) == (1, False)
        replies = client.infer_many(
            [{"image": obs["image"][i], "task": obs["task"][i]} for i in range(2)]
        )
    for i, reply in enumerate(replies):
        np.testing.assert_array_equal(reply.actions, direct[i])
