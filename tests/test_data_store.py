"""The Zarr episode store: round trips, commit semantics, crash repair, locking, disk full."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

from robot_learning.data import (
    EpisodeStore,
    ImageCodec,
    StoreCorruptError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from robot_learning.data.codecs import ImageCodecError
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

FEATURES = SpecDict(
    {
        "joint_pos": FeatureSpec((6,), "float32", "lowdim"),
        "cam_rgb": FeatureSpec((24, 32, 3), "uint8", "rgb"),
        "cam_depth": FeatureSpec((24, 32), "uint16", "depth"),
        "instruction": FeatureSpec((), "str", "language"),
        "action": FeatureSpec((7,), "float32", "lowdim"),
    }
)


def frame(t: int, ep: int) -> np.ndarray:
    """A smooth image that changes with time (JPEG-friendly, like a rendered scene)."""
    yy, xx = np.mgrid[0:24, 0:32]
    base = xx * 3 + yy * 2 + t * 3 + ep * 20  # < 256 for the sizes used here
    return np.stack([base, base // 2 + 60, 255 - base], axis=-1).astype(np.uint8)


def step_values(t: int, ep: int) -> dict:
    return {
        "joint_pos": np.full(6, ep * 100 + t, dtype=np.float32),
        "cam_rgb": frame(t, ep),
        "cam_depth": np.full((24, 32), 1000 + t, dtype=np.uint16),
        "instruction": f"task {ep}",
        "action": np.full(7, -(ep * 100 + t), dtype=np.float32),
    }


def write_episode(store: EpisodeStore, ep: int, steps: int, commit: bool = True) -> int | None:
    writer = store.new_episode(task="unit", operator="tester")
    for t in range(steps):
        writer.add_step(step_values(t, ep), timestamps=ep * 10.0 + t * 0.05)
    if commit:
        return writer.commit(success=ep % 2 == 0)
    return None


def make_store(path: Path, episodes: list[int]) -> None:
    with EpisodeStore.create(path, FEATURES, fps=20, robot="unit-bot") as store:
        for ep, steps in enumerate(episodes):
            write_episode(store, ep, steps)


def test_round_trip_values_metadata_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make_store(path, [5, 7])
    store = EpisodeStore.open(path)
    assert (store.n_episodes, store.n_steps) == (2, 12)
    assert store.episode_ends.tolist() == [5, 12]
    ep = store.read_episode(1, with_timestamps=True)
    assert ep["joint_pos"].shape == (7, 6) and ep["joint_pos"][3, 0] == 103
    assert ep["action"][6, 0] == -106
    assert np.array_equal(ep["cam_depth"][:, 0, 0], 1000 + np.arange(7))  # PNG: lossless
    error = ep["cam_rgb"].astype(float) - np.stack([frame(t, 1) for t in range(7)])
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 35  # JPEG q90: PSNR in dB
    assert np.allclose(ep["action.t"], 10.0 + 0.05 * np.arange(7))
    assert ep["instruction"] == "task 1"
    meta = store.episode_meta(1)
    assert meta["task"] == "unit" and meta["operator"] == "tester" and meta["success"] is False
    assert meta["length"] == 7 and meta["robot"] == "unit-bot" and meta["fps"] == 20
    assert store.array("cam_rgb").metadata.codecs[0] == ImageCodec(format="jpeg", quality=90)


def test_store_opens_in_a_fresh_process_through_the_registered_codec(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make_store(path, [3])
    code = textwrap.dedent(
        f"""
        import zarr, robot_learning.data
        a = zarr.open_array({str(path / "data" / "cam_rgb")!r})
        print(a.metadata.codecs[0].to_dict()["name"], a[:].shape)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["robot_learning.image", "(3,", "24,", "32,", "3)"]


def test_uncommitted_episode_is_invisible_and_discard_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    store = EpisodeStore.create(path, FEATURES, fps=20)
    write_episode(store, 0, 4)
    chunks_before = sorted(p.name for p in (path / "data/cam_rgb/c").iterdir())
    writer = store.new_episode()
    for t in range(9):
        writer.add_step(step_values(t, 1), timestamps=float(t))
    writer.flush()
    reader = EpisodeStore.open(path)  # readers need no lock
    assert reader.n_episodes == 1 and reader.n_steps == 4
    assert store.array("cam_rgb").shape[0] > 4  # frames are already streamed to disk
    writer.discard()
    assert store.array("cam_rgb").shape[0] == 4
    assert sorted(p.name for p in (path / "data/cam_rgb/c").iterdir()) == chunks_before
    write_episode(store, 1, 3)
    store.close()
    reader.refresh()
    assert reader.n_episodes == 2 and reader.read_episode(1)["joint_pos"][2, 0] == 102


def test_killed_writer_loses_only_the_uncommitted_episode(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make_store(path, [4, 6])
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_data_store import step_values
        from robot_learning.data import EpisodeStore
        store = EpisodeStore.open({str(path)!r}, "a")
        w = store.new_episode()
        for t in range(70):
            w.add_step(step_values(t, 2), timestamps=float(t))
        w.flush()
        store.group["meta"].attrs["episodes"] = store.episodes_meta() + [{{"index": 2}}]
        os._exit(0)  # dies without committing (like kill -9 after the frames hit the disk)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    reader = EpisodeStore.open(path)
    assert reader.n_episodes == 2 and reader.n_steps == 10
    store = EpisodeStore.open(path, "a")
    report = store.repair_report
    assert report.repaired and report.episodes_dropped == 1
    assert report.rows_dropped["cam_rgb"] == 70 and report.steps_dropped == 70  # frames written
    assert store.array("cam_rgb").shape[0] == 10
    write_episode(store, 2, 3)
    store.close()
    reopened = EpisodeStore.open(path)
    assert reopened.episode_ends.tolist() == [4, 10, 13]
    assert reopened.read_episode(2)["joint_pos"][:, 0].tolist() == [200, 201, 202]
    assert not EpisodeStore.open(path, "a").repair_report.repaired


def test_a_torn_episode_ends_slot_is_not_a_commit(tmp_path: Path) -> None:
    """A writer killed between resizing episode_ends and writing the value leaves -1 there."""
    path = tmp_path / "s.zarr"
    make_store(path, [4])
    ends = zarr.open_array(str(path / "meta/episode_ends"), mode="r+")
    ends.resize((2,))
    assert EpisodeStore.open(path).n_episodes == 1
    store = EpisodeStore.open(path, "a")
    assert store.n_episodes == 1 and store.group["meta/episode_ends"].shape == (1,)


def test_second_writer_is_refused_and_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make_store(path, [3])
    first = EpisodeStore.open(path, "a")
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        EpisodeStore.open(path, "a")
    first.close()
    fresh = EpisodeStore.create(tmp_path / "new.zarr", FEATURES, fps=20)
    with pytest.raises(StoreLockedError):  # the creator holds the lock from the first moment
        EpisodeStore.open(tmp_path / "new.zarr", "a")
    fresh.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from robot_learning.data import EpisodeStore; "
            f"s = EpisodeStore.open({str(path)!r}, 'a'); print('locked', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            EpisodeStore.open(path, "a")
        holder.kill()
        holder.wait(10)
        EpisodeStore.open(path, "a").close()  # the kernel released the dead writer's lock
    finally:
        holder.kill()


def test_disk_full_keeps_committed_episodes(tmp_path: Path) -> None:
    """A real EFBIG from the kernel (RLIMIT_FSIZE) stands in for a full disk."""
    path = tmp_path / "s.zarr"
    make_store(path, [4])
    code = textwrap.dedent(
        f"""
        import resource, signal, sys, numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_data_store import step_values
        from robot_learning.data import EpisodeStore, StoreFullError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = EpisodeStore.open({str(path)!r}, "a")
        resource.setrlimit(resource.RLIMIT_FSIZE, (1200, 1200))
        w = store.new_episode()
        rng = np.random.default_rng(0)
        try:
            for t in range(20):
                values = step_values(t, 1)
                values["cam_depth"] = rng.integers(0, 65535, (24, 32), dtype=np.uint16)
                w.add_step(values, timestamps=float(t))
            w.commit()
        except StoreFullError as exc:
            print("FULL", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("FULL disk full while recording episode 1"), out
    assert "1 committed episode(s) are intact" in out.stdout
    store = EpisodeStore.open(path, "a")
    assert store.n_episodes == 1 and store.read_episode(0)["joint_pos"][3, 0] == 3
    assert store.array("cam_depth").shape[0] == 4


def test_bad_input_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with pytest.raises(StoreNotFoundError, match="no episode store"):
        EpisodeStore.open(path)
    make_store(path, [2])
    with pytest.raises(StoreError, match="already holds an episode store"):
        EpisodeStore.create(path, FEATURES, fps=20)
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        EpisodeStore.open(path).new_episode()
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(StoreFormatError, match="not a robot_learning episode store"):
        EpisodeStore.open(tmp_path / "other.zarr")
    with EpisodeStore.open(path, "a") as store:
        writer = store.new_episode()
        bad = step_values(0, 0)
        bad["action"] = np.array([np.nan] * 7, dtype=np.float32)
        with pytest.raises(SpecError, match="'action' contains NaN"):
            writer.add_step(bad, 0.0)
        bad = step_values(0, 0)
        bad["cam_rgb"] = np.zeros((10, 10, 3), np.uint8)
        with pytest.raises(SpecError, match="'cam_rgb' has shape"):
            writer.add_step(bad, 0.0)
        with pytest.raises(SpecError, match="does not record"):
            writer.add_step({**step_values(0, 0), "gripper": np.zeros(1)}, 0.0)
        with pytest.raises(StoreError, match="no steps"):
            writer.commit()
    with pytest.raises(ImageCodecError, match="valid formats"):
        ImageCodec(format="gif")
    with pytest.raises(IndexError, match="has 1 episode"):
        EpisodeStore.open(path).read_episode(5)


def test_corrupt_chunk_names_episode_and_key(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    make_store(path, [3, 3])
    chunk = path / "data/cam_rgb/c/4/0/0/0"
    chunk.write_bytes(chunk.read_bytes()[:40])
    store = EpisodeStore.open(path)
    store.read_episode(0)
    with pytest.raises(StoreCorruptError, match="episode 1 key 'cam_rgb'"):
        store.read_episode(1)


def test_async_streams_have_their_own_rate(tmp_path: Path) -> None:
    features = SpecDict(
        {
            "cam_rgb": FeatureSpec((24, 32, 3), "uint8", "rgb"),
            "joints": FeatureSpec((7,), "float64", "lowdim"),
            "action": FeatureSpec((7,), "float32", "lowdim"),
        }
    )
    path = tmp_path / "a.zarr"
    with EpisodeStore.create(path, features, fps=10, async_streams=["joints"]) as store:
        for ep in range(2):
            writer = store.new_episode()
            for t in range(5):
                writer.add_step(
                    {"cam_rgb": frame(t, ep), "action": np.zeros(7, np.float32)}, t * 0.1
                )
            for k in range(50 + ep):
                writer.add_sample("joints", np.full(7, k, dtype=np.float64), k * 0.01)
            with pytest.raises(SpecError, match="use add_sample"):
                writer.add_step({"joints": np.zeros(7)}, 0.0)
            writer.commit()
    store = EpisodeStore.open(path)
    assert store.episode_range(1, "joints") == (50, 101)
    assert store.read_episode(1)["joints"][-1, 0] == 50
    assert json.loads((path / "zarr.json").read_text())["attributes"]["robot_learning"][
        "async_streams"
    ] == ["joints"]
