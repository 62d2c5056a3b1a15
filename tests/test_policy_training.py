"""Diffusion policy training on demonstrations recorded with the collection CLI (real sim, zarr).

Covers: overfitting a tiny dataset (UNet + DDPM/DDIM and transformer + flow matching), exact
checkpoint round trips, resume equivalence, 2-process gloo DDP against one process on the full
batch, and refusals that name the offending feature.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from robot_learning.cli.main import main as cli_main
from robot_learning.data.store import EpisodeStore
from robot_learning.policies import load_policy
from robot_learning.policies.diffusion import DiffusionPolicy
from robot_learning.policies.diffusion_io import save_diffusion
from robot_learning.sim.env import ManipulationEnv
from robot_learning.specs import SpecError
from robot_learning.train.batches import InMemoryWindows
from robot_learning.train.loop import build_policy, train
from robot_learning.train.recipe import Recipe

REPO = Path(__file__).resolve().parents[1]
STATE_KEYS = ["ee_pos", "gripper_pos", "object_pos", "object_quat"]
pytestmark = pytest.mark.render


def record(path: Path, episodes: int, cameras: str) -> Path:
    code = cli_main(
        [
            "collect",
            "--robot",
            "sim:lift",
            "--teleop",
            "scripted",
            "--episodes",
            str(episodes),
            "--out",
            str(path),
            "--no-realtime",
            "--no-keys",
            "--cameras",
            cameras,
            "--image-size",
            "32x32",
            "--seed",
            "3",
            "-q",
        ]
    )
    assert code == 0
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("demos") / "lift", 3, "scene,wrist")


def tiny_recipe(**policy: Any) -> Recipe:
    base: dict[str, Any] = {
        "obs_keys": STATE_KEYS,
        "horizon": 8,
        "n_obs_steps": 2,
        "n_action_steps": 4,
        "unet_channels": [32, 64],
        "step_embed_dim": 32,
        "cnn_channels": [8, 8],
        "spatial_keypoints": 8,
        "image_feature_dim": 16,
        "tactile_feature_dim": 8,
        "transformer_dim": 32,
        "transformer_layers": 2,
        "transformer_heads": 2,
    }
    base.update(policy)
    train_cfg = {
        "steps": 250,
        "batch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 20,
        "log_every": 50,
        "checkpoint_every": 1000,
        "threads": 2,
    }
    return Recipe.from_dict({"policy": base, "train": train_cfg, "eval": {"every": 0}}, "tiny")


@pytest.mark.parametrize(
    "policy_opts",
    [
        {"denoiser": "unet", "objective": "ddpm", "sampler": "ddim", "inference_steps": 10},
        {
            "denoiser": "transformer",
            "objective": "flow",
            "sampler": "flow_euler",
            "inference_steps": 10,
        },
    ],
    ids=["unet-ddpm-ddim", "transformer-flow"],
)
def test_overfits_a_tiny_dataset(store: Path, tmp_path: Path, policy_opts: dict[str, Any]) -> None:
    recipe = tiny_recipe(**policy_opts)
    result = train(recipe, store, tmp_path / "run")
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.steps == 250 and metrics[-1]["step"] == 250
    assert metrics[-1]["loss"] < 0.5 * metrics[0]["loss"]  # flow keeps irreducible velocity noise
    policy = load_policy(tmp_path / "run")
    windows = InMemoryWindows(store, 2, 8, STATE_KEYS, ["action"])
    idx = np.arange(0, len(windows), 3)
    batch = windows.batch(idx)
    obs = {k: batch[k].numpy() for k in STATE_KEYS}
    policy.reset()
    pred = policy.predict_chunk(obs)
    target = batch["action"].numpy()[:, 1:]  # the chunk starts at the newest observation
    assert pred.shape == target.shape == (len(idx), 7, 7)
    # translation deltas and gripper command, in units of the demonstrated range
    span = np.ptp(target.reshape(-1, 7), axis=0) + 1e-6
    err = np.abs(pred - target).reshape(-1, 7) / span
    assert float(err[:, [0, 1, 2, 6]].mean()) < 0.12, err.mean(axis=0)


def test_checkpoint_round_trip_gives_identical_actions(store: Path, tmp_path: Path) -> None:
    with EpisodeStore.open(store, "r") as s:
        recipe = tiny_recipe(
            obs_keys=["scene_rgb", "wrist_rgb", "ee_pos", "gripper_pos", "tactile_left"],
            sampler="dpm",
            inference_steps=4,
        )
        policy = build_policy(recipe, s)
    windows = InMemoryWindows(store, 2, 8, recipe.policy.obs_keys, ["action"])
    batch = windows.batch(np.array([0, 5, 9]))
    obs = {k: batch[k].numpy() for k in recipe.policy.obs_keys}
    with torch.no_grad():  # make the weights non-trivial
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    policy.reset()
    before = policy.predict_chunk(obs)
    save_diffusion(policy, tmp_path / "ckpt")
    assert sorted(os.listdir(tmp_path / "ckpt")) == [
        "config.json",
        "model.safetensors",
        "normalizer.safetensors",
    ]
    loaded = load_policy(tmp_path / "ckpt")
    loaded.reset()
    np.testing.assert_array_equal(loaded.predict_chunk(obs), before)
    fewer = load_policy(tmp_path / "ckpt", inference_steps=2)
    assert isinstance(fewer, DiffusionPolicy) and fewer.config.inference_steps == 2


def test_resume_continues_step_count_and_optimizer_state(store: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe()
    recipe.train.steps = 12
    recipe.train.log_every = 3
    train(recipe, store, tmp_path / "straight")
    first = train(tiny_recipe_with_steps(12), store, tmp_path / "split", max_steps=5)
    assert first.steps == 5
    second = train(tiny_recipe_with_steps(12), store, tmp_path / "split", resume=True)
    assert second.steps == 12
    for name in ("model", "ema", "optimizer"):
        a = load_file(str(tmp_path / "straight" / "train_state" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "split" / "train_state" / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{name}: {key}")
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [3, 5, 6, 9, 12]
    opt = load_file(str(tmp_path / "split" / "train_state" / "optimizer.safetensors"))
    assert float(opt["state.0.step"]) == 12.0


def tiny_recipe_with_steps(steps: int) -> Recipe:
    recipe = tiny_recipe()
    recipe.train.steps = steps
    recipe.train.log_every = 3
    return recipe


def test_checkpoint_for_other_features_is_refused_naming_the_feature(
    store: Path, tmp_path: Path
) -> None:
    with EpisodeStore.open(store, "r") as s:
        policy = build_policy(tiny_recipe(), s)  # needs object_quat, which push does not have
    save_diffusion(policy, tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    env = ManipulationEnv(task="push")
    with pytest.raises(SpecError, match="object_quat"):
        loaded.check_compatible(env.observation_spec(), env.action_spec())
    with pytest.raises(SpecError, match=r"ee_pos.*shape"):
        loaded.check_batch(
            {
                "ee_pos": np.zeros((1, 2, 4)),
                "gripper_pos": np.zeros((1, 2, 1)),
                "object_pos": np.zeros((1, 2, 3)),
                "object_quat": np.zeros((1, 2, 4)),
            }
        )


def test_train_cli_refusals(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("policy:\n  obs_keys: [ee_pos, hole_pos]\ntrain:\n  steps: 2\n")
    code = cli_main(
        ["train", "--recipe", str(recipe), "--data", str(store), "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "hole_pos" in capsys.readouterr().err
    recipe.write_text("policy:\n  obs_keys: [ee_pos]\n  n_obs_step: 2\n")
    code = cli_main(
        ["train", "--recipe", str(recipe), "--data", str(store), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "n_obs_step" in err and "n_obs_steps" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    good = tmp_path / "g.yaml"
    good.write_text("policy:\n  obs_keys: [ee_pos]\n")
    code = cli_main(
        ["train", "--recipe", str(good), "--data", str(store), "--out", str(tmp_path / "full")]
    )
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert (tmp_path / "full" / "x").read_text() == "keep me"


@pytest.mark.parametrize(
    "path", sorted((REPO / "policies").glob("diffusion_*.yaml")), ids=lambda p: p.stem
)
def test_shipped_recipes_are_valid(path: Path) -> None:
    recipe = Recipe.load(path)
    assert recipe.train.budget_minutes > 0 and recipe.budget_note
    assert recipe.policy.n_action_steps <= recipe.policy.horizon - recipe.policy.n_obs_steps + 1


DDP_SCRIPT = r"""
import sys, torch, numpy as np
from safetensors.torch import save_file
from robot_learning.data.store import EpisodeStore
from robot_learning.train import distributed as D
from robot_learning.train.batches import InMemoryWindows
from robot_learning.train.loop import build_policy
from robot_learning.train.recipe import Recipe
store, out, recipe_json = sys.argv[1], sys.argv[2], sys.argv[3]
import json
recipe = Recipe.from_dict(json.loads(open(recipe_json).read()), "tiny")
ctx = D.init_distributed("cpu")
torch.manual_seed(0)
with EpisodeStore.open(store, "r") as s:
    policy = build_policy(recipe, s)
cfg = recipe.policy
windows = InMemoryWindows(store, cfg.n_obs_steps, cfg.horizon, cfg.obs_keys, ["action"])
batch = windows.batch(np.arange(16))
g = torch.Generator().manual_seed(1)
noise = torch.randn(16, cfg.horizon, 7, generator=g)
times = torch.randint(0, cfg.train_timesteps, (16,), generator=g)
per = 16 // ctx.world_size
sl = slice(ctx.rank * per, (ctx.rank + 1) * per)
part = {k: v[sl] for k, v in batch.items()}
model = torch.nn.parallel.DistributedDataParallel(policy) if ctx.enabled else policy
# plain SGD: Adam would amplify float noise in near-zero gradients into full-size steps
opt = torch.optim.SGD(policy.parameters(), lr=0.5)
loss = model(part, noise=noise[sl], times=times[sl])
loss.backward()
opt.step()
if ctx.is_main:
    save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, out)
D.shutdown(ctx)
"""


def test_two_process_gloo_ddp_step_matches_one_process_full_batch(
    store: Path, tmp_path: Path
) -> None:
    script = tmp_path / "ddp_step.py"
    script.write_text(DDP_SCRIPT)
    recipe_json = tmp_path / "recipe.json"
    # no random crop: the two layouts would draw different crops
    recipe = tiny_recipe(
        obs_keys=["wrist_rgb", "ee_pos", "gripper_pos"], crop_fraction=1.0
    ).to_json()
    recipe.pop("name")
    recipe_json.write_text(json.dumps(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    single, multi = tmp_path / "single.safetensors", tmp_path / "ddp.safetensors"
    subprocess.run(
        [sys.executable, str(script), str(store), str(single), str(recipe_json)],
        check=True,
        env=env,
        timeout=120,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            str(script),
            str(store),
            str(multi),
            str(recipe_json),
        ],
        check=True,
        env=env,
        timeout=180,
    )
    a, b = load_file(str(single)), load_file(str(multi))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_train_command_runs_under_torchrun_with_two_gloo_processes(
    store: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "policy:\n  obs_keys: [ee_pos, gripper_pos, object_pos]\n  horizon: 8\n"
        "  unet_channels: [16, 32]\n  n_action_steps: 4\n"
        "train:\n  steps: 4\n  batch_size: 8\n  log_every: 2\n  budget_minutes: 5\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29519",
            "-m",
            "robot_learning.cli",
            "train",
            "--recipe",
            str(recipe),
            "--data",
            str(store),
            "--out",
            str(out),
            "-q",
        ],
        check=True,
        env=env,
        timeout=180,
    )
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["step"] == 4
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4]  # rank 0 alone writes
    loaded = load_policy(out)
    assert loaded.chunk_len == 7
