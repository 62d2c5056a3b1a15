"""LeRobot v3.0 interop: export/import round trips, and loading in the real lerobot package.

The round trips use real stores (recorded from the MuJoCo sim, or written through
``EpisodeStore``), real parquet (pyarrow) and real H.264 (PyAV). The checks against LeRobot itself
run ``scripts/bench/lerobot_peer.py`` inside ``.venv-lerobot`` (created by
``scripts/bench/setup_lerobot_venv.sh``) and are skipped only when that venv is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from robot_learning.cli.main import main
from robot_learning.data import EpisodeStore
from robot_learning.data.lerobot_v3 import (
    EPISODE_META_COLUMN,
    LeRobotFormatError,
    aggregate_stats,
    export_lerobot,
    feature_stats,
    import_lerobot,
    lerobot_name,
    read_tasks,
    write_expected,
)
from robot_learning.specs import FeatureSpec, SpecDict

REPO_ROOT = Path(__file__).resolve().parents[1]
LEROBOT_PY = REPO_ROOT / ".venv-lerobot" / "bin" / "python"
PEER = REPO_ROOT / "scripts" / "bench" / "lerobot_peer.py"
needs_lerobot = pytest.mark.skipif(
    not LEROBOT_PY.exists(),
    reason=".venv-lerobot is absent (create it with bash scripts/bench/setup_lerobot_venv.sh)",
)
pytestmark = pytest.mark.render  # the sim store renders its cameras offscreen
VIDEO_MEAN_ABS_TOL = 8.0  # H.264 crf 23 on 32x32 sim frames measures ~2-4 (of 255)
JPEG_MEAN_ABS_TOL = 4.0  # one extra JPEG q90 re-encode on import


def _record_sim(path: Path) -> Path:
    from drivers.registry import make_robot, make_teleop
    from drivers.robots.sim import SimRobot

    robot = make_robot(
        "sim:lift", cameras=("scene", "wrist"), image_size=(32, 32), max_episode_steps=9
    )
    teleop = make_teleop("scripted", robot=robot)
    assert isinstance(robot, SimRobot)
    with robot, teleop:
        features = SpecDict({**robot.observation_spec().features, **robot.action_spec().features})
        with EpisodeStore.create(path, features, fps=20.0, robot="sim:lift") as store:
            for ep in range(2):
                obs = robot.reset(seed=ep)
                teleop.reset(seed=ep)
                writer = store.new_episode(
                    task="lift", instruction=f"lift the cube {ep}", operator="ci"
                )
                while True:
                    executed = robot.send_action(teleop.get_action(obs))
                    writer.add_step(
                        {**obs.values, **executed.values},
                        {**obs.timestamps, "action": executed.t_exec},
                    )
                    obs = robot.get_observation()
                    if robot.done:
                        break
                writer.commit(success=ep == 0, take=ep)
    return path


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _record_sim(tmp_path_factory.mktemp("sim") / "store")


@pytest.fixture(scope="module")
def exports(sim_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lerobot")
    out = {}
    for mode in ("video", "image"):
        export_lerobot(sim_store, root / mode, mode=mode, repo_id=f"test/{mode}")  # type: ignore[arg-type]
        out[mode] = root / mode
    return out


def _read_store(path: Path) -> tuple[EpisodeStore, list[dict[str, Any]]]:
    store = EpisodeStore.open(path)
    return store, [store.read_episode(i, with_timestamps=True) for i in range(store.n_episodes)]


# ---- format -------------------------------------------------------------------------------------
def test_export_writes_the_v3_layout(sim_store: Path, exports: dict[str, Path]) -> None:
    root = exports["video"]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"].startswith("videos/{video_key}/")
    assert info["chunks_size"] == 1000 and info["data_files_size_in_mb"] == 100
    feats = info["features"]
    assert feats["observation.images.scene"]["dtype"] == "video"
    assert feats["observation.images.scene"]["shape"] == [32, 32, 3]
    assert feats["observation.images.scene"]["info"]["video.codec"] == "h264"
    assert feats["observation.images.scene"]["info"]["video.pix_fmt"] == "yuv420p"
    assert feats["action"]["names"] == ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]
    assert feats["observation.gripper_pos"]["shape"] == [1]
    assert feats["observation.tactile_left"]["shape"] == [8, 6, 3]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in feats
    with EpisodeStore.open(sim_store) as store:
        n, ends = store.n_steps, store.episode_ends
        instructions = [m["instruction"] for m in store.episodes_meta()]
    assert info["total_frames"] == n and info["total_episodes"] == 2
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert data.num_rows == n
    assert "observation.images.scene" not in data.column_names  # it is a video
    assert data.column("index").to_pylist() == list(range(n))
    assert np.allclose(data.column("timestamp").to_numpy()[: ends[0]], np.arange(ends[0]) / 20)
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_to_index"] for e in eps] == list(ends)
    assert [e["tasks"] for e in eps] == [[t] for t in instructions]
    key = "videos/observation.images.wrist"
    assert eps[1][f"{key}/from_timestamp"] == pytest.approx(ends[0] / 20)
    assert eps[1][f"{key}/to_timestamp"] == pytest.approx(ends[1] / 20)
    assert (root / "videos/observation.images.wrist/chunk-000/file-000.mp4").stat().st_size > 0
    assert read_tasks(root) == instructions
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count"} | {
        "q01", "q10", "q50", "q90", "q99"
    }  # fmt: skip
    assert np.array(stats["observation.images.scene"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [n]
    image_cols = pq.read_table(exports["image"] / "data/chunk-000/file-000.parquet")
    cell = image_cols.column("observation.images.scene")[0].as_py()
    assert cell["bytes"].startswith(b"\x89PNG")


def test_feature_names_follow_lerobot_conventions() -> None:
    rgb = FeatureSpec((4, 4, 3), "uint8", "rgb")
    low = FeatureSpec((3,), "float32", "lowdim")
    assert lerobot_name("scene_rgb", rgb, "observation") == "observation.images.scene"
    assert lerobot_name("front", rgb, "observation") == "observation.images.front"
    assert lerobot_name("joint_pos", low, "observation") == "observation.joint_pos"
    assert lerobot_name("action", low, "action") == "action"
    assert lerobot_name("gripper_cmd", low, "action") == "action.gripper_cmd"


def test_aggregated_stats_equal_the_stats_of_all_frames() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.standard_normal((n, 3)) * (1 + i) + i for i, n in enumerate((5, 40, 17))]
    combined = aggregate_stats([feature_stats(p) for p in parts])
    direct = feature_stats(np.concatenate(parts))
    for key in ("min", "max", "mean", "std", "count"):
        assert np.allclose(combined[key], direct[key]), key
    assert combined["q50"].shape == (3,)


# ---- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["image", "video"])
def test_round_trip_restores_the_store(
    mode: str, sim_store: Path, exports: dict[str, Path], tmp_path: Path
) -> None:
    back = tmp_path / "back"
    result = import_lerobot(exports[mode], back)
    assert result.skipped == [] and result.features["observation.images.scene"] == "scene_rgb"
    src, src_eps = _read_store(sim_store)
    dst, dst_eps = _read_store(back)
    with src, dst:
        assert dst.features.to_json() == src.features.to_json()
        assert dst.roles == src.roles and dst.fps == src.fps and dst.robot == src.robot
        assert list(dst.episode_ends) == list(src.episode_ends)
        for a, b in zip(src.episodes_meta(), dst.episodes_meta()):
            for key in ("task", "instruction", "success", "operator", "take", "start_time"):
                assert b[key] == a[key], key
        tol = VIDEO_MEAN_ABS_TOL if mode == "video" else JPEG_MEAN_ABS_TOL
        for a, b in zip(src_eps, dst_eps):
            for key in src.array_keys():
                if src.features[key].kind == "rgb":
                    err = np.abs(a[key].astype(np.float64) - b[key]).mean()
                    assert err < tol, f"{key}: mean abs error {err:.2f}"
                else:
                    assert np.array_equal(a[key], b[key]), key
                    assert a[key].dtype == b[key].dtype
                assert np.allclose(a[f"{key}.t"], b[f"{key}.t"], atol=1e-5), key


def test_round_trip_of_depth_scalars_and_language(tmp_path: Path) -> None:
    features = SpecDict(
        {
            "cam_rgb": FeatureSpec((16, 16, 3), "uint8", "rgb"),
            "depth": FeatureSpec((16, 16), "uint16", "depth"),
            "force": FeatureSpec((), "float64", "lowdim"),
            "prompt": FeatureSpec((), "str", "language"),
            "action": FeatureSpec((3,), "float32", "lowdim", names=("x", "y", "z")),
        }
    )
    rng = np.random.default_rng(3)
    written = []
    with EpisodeStore.create(tmp_path / "src", features, fps=15, robot="arm") as store:
        for ep in range(2):
            w = store.new_episode(task="stack", source="unit")
            steps = []
            for t in range(4 + ep):
                step = {
                    "cam_rgb": np.full((16, 16, 3), 40 * t + 20 * ep, np.uint8),
                    "depth": rng.integers(0, 60000, (16, 16)).astype(np.uint16),
                    "force": np.float64(rng.standard_normal()),
                    "action": rng.standard_normal(3).astype(np.float32),
                    "prompt": f"stack block {ep}",
                }
                w.add_step(step, 100.0 + ep * 10 + t / 15)
                steps.append(step)
            w.commit(success=True)
            written.append(steps)
    out = tmp_path / "lr"
    export_lerobot(tmp_path / "src", out, mode="image")
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.depth"]["shape"] == [16, 16]
    assert info["features"]["observation.force"]["shape"] == [1]
    import_lerobot(out, tmp_path / "back")
    with EpisodeStore.open(tmp_path / "back") as back:
        assert back.features.to_json() == features.to_json()
        for ep, steps in enumerate(written):
            got = back.read_episode(ep, with_timestamps=True)
            assert got["prompt"] == f"stack block {ep}"
            assert back.episode_meta(ep)["instruction"] == f"stack block {ep}"
            assert np.array_equal(got["depth"], np.stack([s["depth"] for s in steps]))
            assert np.array_equal(got["force"], np.array([s["force"] for s in steps]))
            assert np.array_equal(got["action"], np.stack([s["action"] for s in steps]))
            expected_t = 100.0 + ep * 10 + np.arange(len(steps)) / 15
            assert np.allclose(got["action.t"], expected_t, atol=1e-5)


# ---- errors -------------------------------------------------------------------------------------
def test_export_refuses_bad_input(
    sim_store: Path, exports: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(LeRobotFormatError, match="not empty"):
        export_lerobot(sim_store, exports["image"], mode="image")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("x")
    with pytest.raises(LeRobotFormatError, match="refusing to delete"):
        export_lerobot(sim_store, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").exists()
    features = SpecDict({"action": FeatureSpec((2,), "float32", "lowdim")})
    with EpisodeStore.create(tmp_path / "odd", features, fps=29.97) as store:
        w = store.new_episode()
        w.add_step({"action": np.zeros(2, np.float32)}, 0.0)
        w.commit()
    with pytest.raises(LeRobotFormatError, match="integer fps"):
        export_lerobot(tmp_path / "odd", tmp_path / "odd_lr")


def test_import_refuses_what_is_not_a_v3_dataset(exports: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(LeRobotFormatError, match=r"meta/info\.json is missing"):
        import_lerobot(tmp_path, tmp_path / "x")
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta/info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 10}))
    with pytest.raises(LeRobotFormatError, match=r"v2\.1.*[Cc]onvert"):
        import_lerobot(old, tmp_path / "y")


def test_cli_export_and_import(
    sim_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli_lr"
    assert main(["dataset", "export-lerobot", str(sim_store), str(out), "--images", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "image" and report["episodes"] == 2
    assert report["features"]["wrist_rgb"] == "observation.images.wrist"
    assert main(["dataset", "export-lerobot", str(sim_store), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["dataset", "import-lerobot", str(out), str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == report["frames"]
    assert main(["dataset", "import-lerobot", str(tmp_path / "s"), str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a LeRobot dataset" in err


def test_episode_metadata_column_is_json(exports: dict[str, Path]) -> None:
    rows = pq.read_table(exports["image"] / "meta/episodes/chunk-000/file-000.parquet")
    meta = json.loads(rows.column(EPISODE_META_COLUMN)[0].as_py())
    assert meta["task"] == "lift" and meta["operator"] == "ci" and meta["take"] == 0


# ---- the real lerobot package -------------------------------------------------------------------
def _peer(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(LEROBOT_PY), str(PEER), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO_ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"lerobot_peer.py {args[0]} printed no result:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["exit_code"] = proc.returncode
    return result


@needs_lerobot
@pytest.mark.parametrize("mode", ["image", "video"])
def test_real_lerobot_loads_the_export(
    mode: str, sim_store: Path, exports: dict[str, Path], tmp_path: Path
) -> None:
    expect = write_expected(sim_store, tmp_path / "expected.npz", frame_stride=3)
    result = _peer("verify-export", str(exports[mode]), "--expect", str(expect))
    assert result["ok"], result["problems"]
    assert result["exit_code"] == 0
    assert "action" in result["lowdim_features"]
    assert "observation.tactile_left" in result["lowdim_features"]
    errors = result["image_mean_abs_err_max"]
    assert set(errors) == {"observation.images.scene", "observation.images.wrist"}
    if mode == "image":
        assert max(errors.values()) == 0.0  # PNG is lossless
    else:
        assert result["video_backend"] == "torchcodec"
        assert max(errors.values()) < VIDEO_MEAN_ABS_TOL


@needs_lerobot
def test_import_reads_a_dataset_written_by_lerobot(tmp_path: Path) -> None:
    """LeRobot's own writer (AV1 video, its default codec) -> our importer."""
    src, values = tmp_path / "made_by_lerobot", tmp_path / "values.npz"
    made = _peer("make-sample", str(src), "--expect-out", str(values), "--mode", "video")
    assert made["exit_code"] == 0
    result = import_lerobot(src, tmp_path / "store")
    expect = np.load(values)
    assert result.tasks == ["task number 0", "task number 1"]
    with EpisodeStore.open(tmp_path / "store") as store:
        assert list(store.episode_ends) == list(expect["episode_ends"])
        assert store.fps == 10.0 and store.roles["action"] == "action"
        assert store.features["observation.state"].names == tuple(f"j{i}" for i in range(6))
        assert np.array_equal(store.array("observation.state")[:], expect["state"])
        assert np.array_equal(store.array("action")[:], expect["action"])
        frames = store.array("observation.images.front")[:].astype(np.float64)
        assert np.abs(frames - expect["frames"]).mean() < VIDEO_MEAN_ABS_TOL
        assert [m["instruction"] for m in store.episodes_meta()] == [
            "task number 0", "task number 1", "task number 0"
        ]  # fmt: skip
