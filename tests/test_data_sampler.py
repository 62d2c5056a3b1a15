"""Window sampling (edge padding, pad masks, async alignment), torch loading and statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robot_learning.data import EpisodeStore
from robot_learning.data.sampler import WindowConfig, WindowDataset, WindowSampler, window_index
from robot_learning.data.stats import dataset_stats
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

FEATURES = SpecDict(
    {
        "state": FeatureSpec((2,), "float32", "lowdim"),
        "cam_rgb": FeatureSpec((8, 8, 3), "uint8", "rgb"),
        "instruction": FeatureSpec((), "str", "language"),
        "action": FeatureSpec((3,), "float32", "lowdim"),
    }
)
LENGTHS = [6, 9, 4]


def value(ep: int, t: int) -> float:
    return float(ep * 100 + t)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sampler") / "s.zarr"
    with EpisodeStore.create(path, FEATURES, fps=10, image_format="png") as store:
        for ep, length in enumerate(LENGTHS):
            writer = store.new_episode()
            for t in range(length):
                v = value(ep, t)
                writer.add_step(
                    {
                        "state": np.array([v, -v], np.float32),
                        "cam_rgb": np.full((8, 8, 3), (ep * 50 + t) % 256, np.uint8),
                        "instruction": f"do task {ep}",
                        "action": np.array([v, v + 0.5, 0], np.float32),
                    },
                    t * 0.1,
                )
            writer.commit()
    return path


def test_window_index_gives_one_window_per_step_with_default_pads() -> None:
    ends = np.cumsum(LENGTHS)
    index = window_index(ends, WindowConfig(n_obs_steps=2, horizon=5))
    assert len(index) == sum(LENGTHS)
    assert index[0].tolist() == [0, 0, -1]  # first window starts one step before the episode
    assert index[5].tolist() == [0, 0, 4]  # last window of episode 0: current step 5 = last
    with pytest.raises(ValueError, match="cannot exceed horizon"):
        WindowConfig(n_obs_steps=6, horizon=5).resolved()


def test_windows_are_edge_padded_and_flagged(store_path: Path) -> None:
    sampler = WindowSampler(store_path, n_obs_steps=2, horizon=5)
    first = sampler.sample(0)
    assert first["obs_is_pad"].tolist() == [True, False]
    assert first["state"][:, 0].tolist() == [value(0, 0), value(0, 0)]  # repeated edge row
    assert first["action"][:, 0].tolist() == [value(0, t) for t in (0, 0, 1, 2, 3)]
    assert first["cam_rgb"][:, 0, 0, 0].tolist() == [0, 0]
    last_of_ep1 = sampler.sample(LENGTHS[0] + LENGTHS[1] - 1)
    assert last_of_ep1["episode"] == 1 and last_of_ep1["step"] == 8
    assert last_of_ep1["obs_is_pad"].tolist() == [False, False]
    assert last_of_ep1["action_is_pad"].tolist() == [False, False, True, True, True]
    assert last_of_ep1["action"][:, 0].tolist() == [value(1, t) for t in (7, 8, 8, 8, 8)]
    assert last_of_ep1["cam_rgb"][:, 0, 0, 0].tolist() == [57, 58]
    assert last_of_ep1["instruction"] == "do task 1"


def test_cache_modes_and_episode_selection_agree(store_path: Path) -> None:
    plain = WindowSampler(store_path, n_obs_steps=2, horizon=4, cache="none", episodes=[2])
    cached = WindowSampler(store_path, n_obs_steps=2, horizon=4, cache="all", episodes=[2])
    assert len(plain) == LENGTHS[2]
    for i in range(len(plain)):
        a, b = plain.sample(i), cached.sample(i)
        assert a["episode"] == 2
        assert all(np.array_equal(a[k], b[k]) for k in ("state", "cam_rgb", "action"))
    with pytest.raises(SpecError, match="no feature 'gripper'"):
        WindowSampler(store_path, obs_keys=["gripper"])
    with pytest.raises(ValueError, match="unknown cache mode"):
        WindowSampler(store_path, cache="gpu")  # type: ignore[arg-type]


def test_multiworker_dataloader_matches_direct_sampling(store_path: Path) -> None:
    dataset = WindowDataset(store_path, n_obs_steps=2, horizon=4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["action"]) for b in batches) == sum(LENGTHS)
    direct = dataset.sampler.sample(5)
    batch = batches[1]
    assert batch["cam_rgb"].dtype == torch.uint8 and batch["cam_rgb"].shape == (4, 2, 8, 8, 3)
    assert torch.equal(batch["state"][1], torch.from_numpy(direct["state"]))
    assert batch["instruction"][1] == direct["instruction"]


def test_async_stream_aligned_to_latest_sample_at_or_before_each_step(tmp_path: Path) -> None:
    features = SpecDict(
        {
            "joints": FeatureSpec((1,), "float64", "lowdim"),
            "action": FeatureSpec((1,), "float32", "lowdim"),
        }
    )
    path = tmp_path / "a.zarr"
    with EpisodeStore.create(path, features, fps=10, async_streams=["joints"]) as store:
        writer = store.new_episode()
        for t in range(4):
            writer.add_step({"action": np.array([t], np.float32)}, t * 0.1)
        for k in range(40):  # 100 Hz joints, first sample at 0.005 s
            writer.add_sample("joints", np.array([k]), 0.005 + k * 0.01)
        writer.commit()
    sampler = WindowSampler(path, n_obs_steps=1, horizon=1)
    joints = [sampler.sample(i)["joints"][0, 0] for i in range(4)]
    assert joints == [0, 9, 19, 29]  # at t=0 none exists yet: the first sample stands in


def test_statistics_are_stored_and_recomputed_when_the_store_grows(store_path: Path) -> None:
    with EpisodeStore.open(store_path, "a") as store:
        stats = dataset_stats(store)
        state = stats["features"]["state"]
        values = [value(ep, t) for ep, n in enumerate(LENGTHS) for t in range(n)]
        assert state["max"][0] == max(values) and state["min"][1] == -max(values)
        assert np.isclose(state["mean"][0], np.mean(values))
        assert len(stats["features"]["cam_rgb"]["mean"]) == 3
    reopened = EpisodeStore.open(store_path)
    assert reopened.info["stats"]["episodes"] == len(LENGTHS)
    assert dataset_stats(reopened) == reopened.info["stats"]
