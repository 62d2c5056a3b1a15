"""The compact VLA: a frozen MiniLM instruction embedding conditions a diffusion policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_learning.cli.main import main as cli_main
from robot_learning.data.store import EpisodeStore
from robot_learning.policies import load_policy
from robot_learning.policies.diffusion import DiffusionPolicy
from robot_learning.policies.encoders import language
from robot_learning.serving.client import PolicyClient
from robot_learning.serving.server import PolicyServer
from robot_learning.serving.thread import ServerThread
from robot_learning.specs import SpecError
from robot_learning.train.loop import build_policy, train
from robot_learning.train.recipe import Recipe

pytestmark = pytest.mark.render
OBS_KEYS = ["scene_rgb", "ee_pos", "gripper_pos", "instruction"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "pick_language"
    code = cli_main(
        [
            "collect",
            "--robot",
            "sim:pick_language",
            "--teleop",
            "scripted",
            "--episodes",
            "4",
            "--out",
            str(path),
            "--no-realtime",
            "--no-keys",
            "--fps",
            "10",
            "--cameras",
            "scene",
            "--image-size",
            "32x32",
            "-q",
        ]
    )
    assert code == 0
    return path


def tiny_recipe(**policy: Any) -> Recipe:
    base: dict[str, Any] = {
        "obs_keys": OBS_KEYS,
        "horizon": 8,
        "n_obs_steps": 2,
        "n_action_steps": 4,
        "unet_channels": [16, 32],
        "step_embed_dim": 16,
        "cnn_channels": [8, 8],
        "spatial_keypoints": 8,
        "image_feature_dim": 16,
        "language_feature_dim": 16,
        "inference_steps": 4,
    }
    base.update(policy)
    train_cfg = {"steps": 40, "batch_size": 16, "lr": 2e-3, "warmup_steps": 5, "threads": 2}
    return Recipe.from_dict({"policy": base, "train": train_cfg, "eval": {"every": 0}}, "tiny_vla")


@pytest.fixture(scope="module")
def vla(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vla") / "policy"
    train(tiny_recipe(), store, out)
    return out


def window(store: Path, instruction: str) -> dict[str, Any]:
    """The first two steps of episode 0, with ``instruction`` in place of the recorded one."""
    keys = [k for k in OBS_KEYS if k != "instruction"]
    with EpisodeStore.open(store) as s:
        episode = s.read_episode(0, keys)
    return {**{k: np.asarray(episode[k][:2])[None] for k in keys}, "instruction": [instruction]}


def test_instructions_are_embedded_once_each_as_unit_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedder = language.SentenceEmbedder()
    first = embedder.embed(["pick up the red cube", "pick up the blue cube"])
    calls: list[list[str]] = []
    model = embedder._model
    real_encode = model.encode
    monkeypatch.setattr(
        model, "encode", lambda texts, **kw: calls.append(texts) or real_encode(texts, **kw)
    )
    again = embedder.embed(["pick up the blue cube", "pick up the red cube", "lift the red block"])
    assert calls == [["lift the red block"]]  # only the new instruction was encoded
    np.testing.assert_array_equal(again[1], first[0])
    assert again.shape == (3, language.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-5)
    assert float(first[0] @ first[1]) < 0.99  # different colours, different embeddings
    with pytest.raises(ValueError, match="valid: all-minilm-l6-v2"):
        language.SentenceEmbedder("clip")


def test_the_vla_follows_its_instruction_round_trips_and_serves(store: Path, vla: Path) -> None:
    policy = load_policy(vla)
    assert isinstance(policy, DiffusionPolicy)
    assert policy.observation_spec["instruction"].kind == "language"
    red = window(store, "pick up the red cube")
    policy.reset()
    a = policy.predict_chunk(red)
    policy.reset()
    b = policy.predict_chunk(window(store, "pick up the blue cube"))
    policy.reset()
    assert np.array_equal(a, policy.predict_chunk(red))  # deterministic after reset
    assert np.abs(a - b).max() > 1e-4, "the instruction changes the actions"
    film = policy.encoder.encoders["scene_rgb"].film
    assert (
        film is not None and float(film.weight.detach().abs().sum()) > 0
    )  # trained away from zero

    with pytest.raises(SpecError, match="lacks 'instruction'"):
        policy.predict_chunk({k: v for k, v in red.items() if k != "instruction"})

    # through the policy server: the same actions as in-process
    served = load_policy(vla)
    with ServerThread(PolicyServer({"vla": served})) as thread, PolicyClient(thread.url) as client:
        client.connect()
        served.reset()
        reply = client.infer({k: v[0] for k, v in red.items()})
    policy.reset()
    np.testing.assert_allclose(reply.actions, policy.predict_chunk(red)[0], atol=1e-5)


def test_a_language_blind_recipe_never_sees_the_instruction(store: Path) -> None:
    with EpisodeStore.open(store) as s:
        blind = build_policy(tiny_recipe(obs_keys=[], obs_kinds=["rgb", "lowdim"]), s)
        seeing = build_policy(tiny_recipe(obs_keys=[], obs_kinds=["rgb", "lowdim", "language"]), s)
    assert "instruction" not in blind.observation_spec
    assert seeing.observation_spec["instruction"].kind == "language"
    assert seeing.encoder.out_dim == blind.encoder.out_dim + 16
    with EpisodeStore.open(store) as s, pytest.raises(SpecError, match="cannot condition"):
        build_policy(tiny_recipe(obs_keys=["instruction"]), s)


def test_eval_takes_unseen_wordings_and_refuses_unknown_options(
    vla: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "heldout"
    args = ["eval", "--policy", str(vla), "--task", "pick_language", "--episodes", "1"]
    code = cli_main(
        [
            *args,
            "--num-envs",
            "1",
            "--videos",
            "0",
            "--out",
            str(out),
            "--task-opt",
            "phrasing=heldout",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads((out / "eval.json").read_text())
    assert summary["task_options"] == {"phrasing": "heldout"} and summary["episodes"] == 1
    assert cli_main([*args, "--task-opt", "colour=red"]) == 2
    assert "task 'pick_language' takes options: phrasing" in capsys.readouterr().err
    assert cli_main([*args, "--task-opt", "phrasing=shouted"]) == 2
    assert "valid: train, heldout" in capsys.readouterr().err
