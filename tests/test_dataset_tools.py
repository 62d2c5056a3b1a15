"""``robot-learning dataset info | verify | merge | split | view`` on real stores on disk.

Stores are recorded from the MuJoCo sim robot with the scripted teleop (and, for depth, async
streams and language, written through ``EpisodeStore`` directly); corruption tests damage the
chunk files on disk the way a bad copy or a full disk would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from robot_learning.cli.main import main
from robot_learning.data import EpisodeStore
from robot_learning.specs import FeatureSpec, SpecDict

STEPS = 15
SUCCESS = (True, False, None, True)  # operator labels; one episode left unlabelled
REPO = Path(__file__).resolve().parents[1]


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """4 scripted lift episodes of 15 steps from the sim robot, scene camera 32x32."""
    from drivers.registry import make_robot, make_teleop

    path = tmp_path_factory.mktemp("sim") / "lift.zarr"
    robot = make_robot("sim:lift", cameras=("scene",), image_size=(32, 32))
    with robot:
        teleop = make_teleop("scripted", robot=robot)
        with teleop:
            features = SpecDict(
                {**robot.observation_spec().features, **robot.action_spec().features}
            )
            store = EpisodeStore.create(path, features, fps=20.0, robot="sim:lift")
            with store:
                for episode, success in enumerate(SUCCESS):
                    obs = robot.reset(seed=episode)
                    teleop.reset(seed=episode)
                    writer = store.new_episode(task="lift", instruction=robot.instruction)
                    for _ in range(STEPS):
                        action = teleop.get_action(obs)
                        executed = robot.send_action(action)
                        writer.add_step(
                            {**obs.values, **executed.values},
                            {**obs.timestamps, "action": executed.t_exec},
                        )
                        obs = robot.get_observation()
                    writer.commit(success=success)
    yield path


SYNTH = SpecDict(
    {
        "rgb": FeatureSpec((16, 16, 3), "uint8", "rgb"),
        "depth": FeatureSpec((16, 16), "uint16", "depth"),
        "joints": FeatureSpec((3,), "float32", "lowdim"),
        "joints_fast": FeatureSpec((3,), "float32", "lowdim"),
        "prompt": FeatureSpec((), "str", "language"),
        "action": FeatureSpec((2,), "float32", "lowdim"),
    }
)


def write_synthetic(
    path: Path, episodes: int = 3, steps: int = 10, image_format: str = "jpeg", seed: int = 0
) -> Path:
    """Depth, an async 5x-rate stream and a language feature: what the sim store lacks."""
    rng = np.random.default_rng(seed)
    with EpisodeStore.create(
        path,
        SYNTH,
        fps=10.0,
        robot="synthetic",
        async_streams=("joints_fast",),
        image_format=image_format,
    ) as store:
        for ep in range(episodes):
            w = store.new_episode(task="stack", operator="tester")
            for step in range(steps):
                t = ep * 100 + step * 0.1
                rgb = np.zeros((16, 16, 3), np.uint8)
                rgb[..., 0] = 10 * step + 5
                rgb[4:8, 4 + ep : 8 + ep, 1] = 200
                depth = (500 + 40 * np.arange(16)[None, :] + 20 * step).repeat(16, 0)
                w.add_step(
                    {
                        "rgb": rgb,
                        "depth": depth.astype(np.uint16),
                        "joints": rng.normal(size=3).astype(np.float32),
                        "prompt": f"stack block {ep}",
                        "action": rng.normal(size=2).astype(np.float32),
                    },
                    t,
                )
                for k in range(5):
                    w.add_sample("joints_fast", rng.normal(size=3).astype(np.float32), t + k * 0.02)
            w.commit(success=ep % 2 == 0)
    return path


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synth") / "synth.zarr", image_format="png")


@pytest.fixture
def store_copy(sim_store: Path, tmp_path: Path) -> Path:
    """A private copy of the sim store that a test may damage."""
    dst = tmp_path / "copy.zarr"
    shutil.copytree(sim_store, dst)
    return dst


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    code, out, err = run(capsys, [*argv, "--json"])
    assert code == 0, err
    return json.loads(out)


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def image_chunk(store: Path, key: str, row: int) -> Path:
    return store / "data" / key / "c" / str(row) / "0" / "0" / "0"


# ---- info -------------------------------------------------------------------------------------
def test_info_json_reports_the_store(capsys: pytest.CaptureFixture[str], sim_store: Path) -> None:
    info = run_json(capsys, ["dataset", "info", str(sim_store)])
    assert (info["episodes"], info["steps"], info["fps"]) == (4, 4 * STEPS, 20.0)
    assert info["duration_s"] == pytest.approx(4 * STEPS / 20.0)
    assert info["robot"] == "sim:lift"
    assert info["episode_steps_min"] == info["episode_steps_max"] == STEPS
    assert info["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert info["success_labelled"] == 3
    assert info["tasks"] == {"lift": 4}
    assert list(info["instructions"].values()) == [4]
    rgb = info["features"]["scene_rgb"]
    assert (rgb["shape"], rgb["dtype"], rgb["kind"], rgb["role"]) == (
        [32, 32, 3],
        "uint8",
        "rgb",
        "observation",
    )
    assert rgb["codecs"] == [
        {"id": "robot_learning.image", "configuration": {"format": "jpeg", "quality": 90}}
    ]
    assert rgb["rows"] == 4 * STEPS and rgb["raw_bytes"] == 4 * STEPS * (32 * 32 * 3 + 8)
    assert info["features"]["action"]["role"] == "action"
    assert [c["id"] for c in info["features"]["joint_pos"]["codecs"]] == ["bytes", "blosc"]
    on_disk = sum(p.stat().st_size for p in sim_store.rglob("*") if p.is_file())
    assert info["size_bytes"] == on_disk
    assert info["compression_ratio"] == pytest.approx(info["raw_bytes"] / on_disk, rel=1e-3)
    assert rgb["compression_ratio"] > 1.0
    assert info["uncommitted_tail"]["present"] is False


def test_info_text_names_features_and_codecs(
    capsys: pytest.CaptureFixture[str], synth_store: Path
) -> None:
    code, out, _ = run(capsys, ["dataset", "info", str(synth_store)])
    assert code == 0
    assert "episodes     3" in out and "robot_learning.image(format=png" in out
    assert "joints_fast" in out and "[async]" in out and "stack block 0" in out


def test_info_reports_async_streams(capsys: pytest.CaptureFixture[str], synth_store: Path) -> None:
    info = run_json(capsys, ["dataset", "info", str(synth_store)])
    assert info["async_streams"] == {"joints_fast": {"samples": 150, "rate_hz": 50.0}}
    assert info["features"]["prompt"]["kind"] == "language"
    assert info["features"]["depth"]["codecs"][0]["configuration"]["format"] == "png"
    assert info["success_rate"] == pytest.approx(2 / 3, abs=1e-4)


CRASHING_WRITER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from robot_learning.data import EpisodeStore
    store = EpisodeStore.open(sys.argv[1], "a")
    w = store.new_episode(task="lift")
    obs = store.read_episode(0)
    for i in range(5):
        w.add_step({k: v[i] for k, v in obs.items()}, 100.0 + i)
    w.flush()
    os._exit(0)  # killed before commit: frames are on disk past the committed end
    """
)


def test_uncommitted_tail_is_reported_not_repaired(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(store_copy)], check=True, cwd=REPO)
    before = tree_digest(store_copy)
    info = run_json(capsys, ["dataset", "info", str(store_copy)])
    tail = info["uncommitted_tail"]
    assert tail["present"] and tail["rows"]["scene_rgb"] >= 5
    assert info["episodes"] == 4 and info["steps"] == 4 * STEPS
    code, out, err = run(capsys, ["dataset", "verify", str(store_copy)])
    assert code == 0, out
    assert "warning: uncommitted tail" in err and "scene_rgb" in err
    assert tree_digest(store_copy) == before  # read-only tools never repair
    with EpisodeStore.open(store_copy, "a") as store:
        assert store.repair_report.repaired
    assert (
        run_json(capsys, ["dataset", "info", str(store_copy)])["uncommitted_tail"]["present"]
        is False
    )


# ---- verify -----------------------------------------------------------------------------------
def test_verify_clean_store(capsys: pytest.CaptureFixture[str], sim_store: Path) -> None:
    code, out, err = run(capsys, ["dataset", "verify", str(sim_store)])
    assert code == 0, out
    assert out.startswith("OK: 4 episodes") and f"{4 * STEPS} frames decoded" in out
    assert "warning" not in err
    report = run_json(capsys, ["dataset", "verify", str(sim_store)])
    assert report["ok"] and report["problems"] == [] and report["frames_decoded"] == 4 * STEPS


def test_verify_names_a_corrupt_image_chunk(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    row = 2 * STEPS + 7  # episode 2, step 7
    chunk = image_chunk(store_copy, "scene_rgb", row)
    data = bytearray(chunk.read_bytes())
    data[8:40] = b"\xa5" * 32  # the JPEG header (after the frame-count and length words)
    chunk.write_bytes(bytes(data))
    code, out, _ = run(capsys, ["dataset", "verify", str(store_copy)])
    assert code == 1
    problems = [ln for ln in out.splitlines() if ln.startswith("episode")]
    assert len(problems) == 1, out
    assert problems[0].startswith(f"episode 2 key 'scene_rgb' row {row}: step 7: jpeg chunk")
    assert "does not decode" in problems[0]
    assert out.splitlines()[-1].startswith("1 problem(s)")
    # --quick does not decode frames: the chunk file exists, so it passes
    assert run(capsys, ["dataset", "verify", str(store_copy), "--quick"])[0] == 0


def test_verify_names_a_corrupt_lowdim_chunk(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    chunk = store_copy / "data" / "joint_pos" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[0:16] = b"\xff" * 16  # the blosc header
    chunk.write_bytes(bytes(data))
    code, out, _ = run(capsys, ["dataset", "verify", str(store_copy), "--json"])
    assert code == 1
    report = json.loads(out)
    bad = [(p["episode"], p["key"]) for p in report["problems"]]
    assert bad == [(i, "joint_pos") for i in range(4)]  # one 1024-row chunk spans all episodes
    assert "does not decode" in report["problems"][0]["text"]
    assert report["problems"][0]["text"].startswith("episode 0 key 'joint_pos': rows 0..14")


def test_verify_names_a_truncated_chunk(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    chunk = image_chunk(store_copy, "scene_rgb", 3)
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    ts = store_copy / "timestamps" / "action" / "c" / "0"
    ts.write_bytes(ts.read_bytes()[:10])
    code, out, _ = run(capsys, ["dataset", "verify", str(store_copy)])
    assert code == 1
    assert "episode 0 key 'scene_rgb' row 3: step 3: jpeg chunk does not decode" in out
    assert "truncated" in out
    assert "episode 3 key 'action': rows 45..59: timestamps chunk does not decode" in out


def test_verify_finds_a_deleted_image_chunk(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    image_chunk(store_copy, "scene_rgb", STEPS + 4).unlink()
    # zarr reads a missing chunk as the fill value: the store alone would not notice
    with EpisodeStore.open(store_copy) as store:
        assert not store.read_episode(1, ["scene_rgb"])["scene_rgb"][4].any()
    for quick in ([], ["--quick"]):
        code, out, _ = run(capsys, ["dataset", "verify", str(store_copy), *quick])
        assert code == 1
        assert f"episode 1 key 'scene_rgb' row {STEPS + 4}: chunk file" in out
        assert "is missing" in out


def test_verify_finds_inconsistent_metadata(
    capsys: pytest.CaptureFixture[str], store_copy: Path
) -> None:
    import zarr

    group = zarr.open_group(str(store_copy), mode="r+")
    episodes = list(group["meta"].attrs["episodes"])
    episodes[1] = {k: v for k, v in episodes[1].items() if k != "operator"} | {"length": 99}
    group["meta"].attrs["episodes"] = episodes
    ts = group["timestamps/joint_pos"]
    ts[2 * STEPS + 3] = -5.0  # time runs backwards inside episode 2
    code, out, _ = run(capsys, ["dataset", "verify", str(store_copy)])
    assert code == 1
    assert "episode 1: metadata is missing fields ['operator']" in out
    assert "episode 1: metadata length 99 != 15 rows in episode_ends" in out
    assert f"episode 2 key 'joint_pos' row {2 * STEPS + 3}: timestamp -5.0" in out


def test_verify_synthetic_store_with_async_stream_is_clean(
    capsys: pytest.CaptureFixture[str], synth_store: Path
) -> None:
    report = run_json(capsys, ["dataset", "verify", str(synth_store)])
    assert report["ok"], report["problems"]
    assert report["frames_decoded"] == 2 * 30  # rgb + depth, 3 episodes x 10 steps


def test_verify_missing_store_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, ["dataset", "verify", str(tmp_path / "nope")])
    assert code == 2 and out == "" and "no episode store" in err


# ---- merge ------------------------------------------------------------------------------------
def test_merge_copies_episodes_and_chunks(
    capsys: pytest.CaptureFixture[str], sim_store: Path, tmp_path: Path
) -> None:
    second = tmp_path / "second.zarr"
    run_json(
        capsys, ["dataset", "split", str(sim_store), "--out", str(second), "--episodes", "1:3"]
    )
    out = tmp_path / "merged.zarr"
    stats = run_json(capsys, ["dataset", "merge", str(out), str(sim_store), str(second)])
    assert (stats["episodes"], stats["steps"]) == (6, 6 * STEPS)
    assert stats["chunks_copied"] == 6 * STEPS and stats["frames_reencoded"] == 0
    with EpisodeStore.open(out) as merged, EpisodeStore.open(sim_store) as src:
        assert merged.n_episodes == 6
        for new, old in enumerate([0, 1, 2, 3, 1, 2]):
            a, b = (
                merged.read_episode(new, with_timestamps=True),
                src.read_episode(old, with_timestamps=True),
            )
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            meta = merged.episode_meta(new)
            assert meta["index"] == new and meta["success"] == SUCCESS[old]
            assert meta["source"].endswith(f"#{old if new < 4 else old - 1}")
        assert merged.episode_meta(4)["origin"]["store"] == str(second.resolve())
        assert merged.episode_meta(4)["origin"]["source"].endswith("lift.zarr#1")
    # encoded chunks were copied byte for byte, not re-encoded
    assert (
        image_chunk(out, "scene_rgb", 4 * STEPS + 2).read_bytes()
        == image_chunk(sim_store, "scene_rgb", STEPS + 2).read_bytes()
    )
    assert run(capsys, ["dataset", "verify", str(out)])[0] == 0


def test_merge_rejects_mismatched_features(
    capsys: pytest.CaptureFixture[str], sim_store: Path, synth_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bad.zarr"
    code, stdout, err = run(
        capsys, ["dataset", "merge", str(out), str(sim_store), str(synth_store)]
    )
    assert code == 2 and stdout == ""
    assert "feature 'joint_pos' differs" in err and "no such feature" in err
    assert not out.exists()
    other = tmp_path / "other.zarr"
    features = SpecDict({**SYNTH.features, "rgb": FeatureSpec((8, 8, 3), "uint8", "rgb")})
    with EpisodeStore.create(other, features, fps=10.0, async_streams=("joints_fast",)):
        pass
    code, _, err = run(capsys, ["dataset", "merge", str(out), str(synth_store), str(other)])
    assert code == 2
    assert "feature 'rgb' differs" in err and "[16, 16, 3]" in err and "[8, 8, 3]" in err


def test_merge_reencodes_when_codecs_differ(
    capsys: pytest.CaptureFixture[str], synth_store: Path, tmp_path: Path
) -> None:
    jpeg = write_synthetic(tmp_path / "jpeg.zarr", episodes=2, image_format="jpeg", seed=1)
    png_first = tmp_path / "merged.zarr"
    stats = run_json(capsys, ["dataset", "merge", str(png_first), str(synth_store), str(jpeg)])
    assert stats["episodes"] == 5
    assert stats["frames_reencoded"] == 2 * 10  # jpeg rgb frames re-encoded as png
    with EpisodeStore.open(png_first) as merged, EpisodeStore.open(jpeg) as src:
        for new, old in ((3, 0), (4, 1)):
            a, b = (
                merged.read_episode(new, with_timestamps=True),
                src.read_episode(old, with_timestamps=True),
            )
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # png is lossless
        assert merged.read_episode(4)["prompt"] == "stack block 1"
        assert merged.episode_range(4, "joints_fast") == (150 + 50, 150 + 100)


def test_merge_refuses_to_overwrite_a_source(
    capsys: pytest.CaptureFixture[str], sim_store: Path, synth_store: Path
) -> None:
    before = tree_digest(sim_store)
    code, _, err = run(
        capsys,
        ["dataset", "merge", str(sim_store), str(sim_store), str(synth_store), "--overwrite"],
    )
    assert code == 2 and "is also a source store" in err
    assert tree_digest(sim_store) == before


# ---- split ------------------------------------------------------------------------------------
def source_indices(path: Path) -> list[int]:
    with EpisodeStore.open(path) as store:
        return [m["origin"]["episode"] for m in store.episodes_meta()]


def test_split_is_disjoint_complete_and_deterministic(
    capsys: pytest.CaptureFixture[str], synth_store: Path, tmp_path: Path
) -> None:
    before = tree_digest(synth_store)
    parts = []
    for attempt in ("a", "b"):
        train, val = tmp_path / f"train_{attempt}", tmp_path / f"val_{attempt}"
        result = run_json(
            capsys,
            [
                "dataset",
                "split",
                str(synth_store),
                "--out-train",
                str(train),
                "--out-val",
                str(val),
                "--val-fraction",
                "0.34",
                "--seed",
                "7",
            ],
        )
        assert result["train"]["episodes"] + result["val"]["episodes"] == 3
        parts.append((source_indices(train), source_indices(val)))
    (train_idx, val_idx), again = parts
    assert again == (train_idx, val_idx)
    assert len(val_idx) == 1 and not set(train_idx) & set(val_idx)
    assert sorted(train_idx + val_idx) == [0, 1, 2] and train_idx == sorted(train_idx)
    assert tree_digest(synth_store) == before
    with EpisodeStore.open(tmp_path / "val_a") as v, EpisodeStore.open(synth_store) as src:
        a, b = v.read_episode(0), src.read_episode(val_idx[0])
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_split_by_explicit_val_episodes(
    capsys: pytest.CaptureFixture[str], sim_store: Path, tmp_path: Path
) -> None:
    train, val = tmp_path / "train", tmp_path / "val"
    code, out, err = run(
        capsys,
        [
            "dataset",
            "split",
            str(sim_store),
            "--out-train",
            str(train),
            "--out-val",
            str(val),
            "--val-episodes",
            "1,3",
        ],
    )
    assert code == 0, err
    assert "train:" in out and "episodes 0,2" in out and "val:" in out and "1,3" in out
    assert source_indices(train) == [0, 2] and source_indices(val) == [1, 3]


def test_split_extracts_a_range(
    capsys: pytest.CaptureFixture[str], sim_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "subset.zarr"
    result = run_json(
        capsys, ["dataset", "split", str(sim_store), "--out", str(out), "--episodes", "2:"]
    )
    assert result["out"]["episodes"] == 2
    assert source_indices(out) == [2, 3]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "X", "--episodes", "7"], "episode(s) [7] do not exist; valid indices are 0..3"),
        (["--out", "X", "--episodes", "a:b"], "bad episode selection 'a:b'"),
        (["--out-train", "A", "--out-val", "B", "--val-fraction", "1.5"], "must be in (0, 1)"),
        (["--out-train", "A", "--out-val", "B"], "needs --val-fraction F or --val-episodes"),
        (["--out", "X", "--out-train", "A"], "use either"),
    ],
)
def test_split_bad_arguments(
    capsys: pytest.CaptureFixture[str],
    sim_store: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    argv = [str(tmp_path / a) if a in ("X", "A", "B") else a for a in extra]
    code, out, err = run(capsys, ["dataset", "split", str(sim_store), *argv])
    assert code == 2 and out == "" and message in err, err


# ---- view -------------------------------------------------------------------------------------
def test_view_writes_an_mp4_with_one_frame_per_step(
    capsys: pytest.CaptureFixture[str], sim_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ep1.mp4"
    result = run_json(
        capsys, ["dataset", "view", str(sim_store), "--episode", "1", "--out", str(out)]
    )
    assert result["video"]["frames"] == STEPS
    frames = list(imageio_ffmpeg.read_frames(str(out)))
    meta, pixels = frames[0], frames[1:]
    assert len(pixels) == STEPS
    assert tuple(meta["size"]) == (result["video"]["width_px"], result["video"]["height_px"])
    assert meta["size"][1] >= 240  # 32 px frames are upscaled to be watchable


def test_view_tiles_depth_beside_rgb(
    capsys: pytest.CaptureFixture[str], synth_store: Path, tmp_path: Path
) -> None:
    import imageio.v2 as imageio

    out = tmp_path / "synth.mp4"
    result = run_json(
        capsys,
        ["dataset", "view", str(synth_store), "--episode", "2", "--out", str(out), "--scale", "4"],
    )
    video = result["video"]
    assert video["keys"] == ["rgb", "depth"] and (video["width_px"], video["height_px"]) == (
        128,
        64,
    )
    frames = [np.asarray(f) for f in imageio.get_reader(str(out))]
    assert len(frames) == 10
    last = frames[-1].astype(int)
    # left tile: red ramp of the rgb stream; right tile: colourized depth, varying left to right
    assert last[20, 20, 0] > 80 and abs(last[20, 20, 0] - last[20, 44, 0]) < 30
    right = last[20, 64:128]
    assert np.abs(right[2] - right[-3]).sum() > 100


def test_view_bad_keys_and_episode(
    capsys: pytest.CaptureFixture[str], sim_store: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "x.mp4")
    code, _, err = run(capsys, ["dataset", "view", str(sim_store), "--episode", "9", "--out", out])
    assert code == 2 and "--episode 9 does not exist" in err and "(0..3)" in err
    code, _, err = run(
        capsys,
        ["dataset", "view", str(sim_store), "--episode", "0", "--out", out, "--keys", "joint_pos"],
    )
    assert code == 2 and "not image features" in err and "scene_rgb" in err


def test_view_exports_a_rerun_recording(
    capsys: pytest.CaptureFixture[str], synth_store: Path, tmp_path: Path
) -> None:
    pytest.importorskip("rerun")
    from rerun.chunk import RrdReader

    rrd = tmp_path / "ep0.rrd"
    result = run_json(
        capsys, ["dataset", "view", str(synth_store), "--episode", "0", "--rerun", str(rrd)]
    )
    assert "video" not in result and result["rerun"]["rows"] == 4 * 10 + 50
    rows: dict[str, int] = {}
    for chunk in RrdReader(str(rrd)).store().stream():
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
    assert rows["/observation/rgb"] == 10 and rows["/observation/depth"] == 10
    assert rows["/observation/joints_fast"] == 50 and rows["/action/action"] == 10
    assert "/episode/instruction" in rows


def test_dataset_tools_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for tool in ("info", "verify", "merge", "split", "view"):
        assert main(["dataset", tool, "--help"]) == 0
        assert f"usage: robot-learning dataset {tool}" in capsys.readouterr().out


def test_view_rerun_without_the_sdk_says_what_to_install(
    capsys: pytest.CaptureFixture[str],
    synth_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rerun", None)  # makes `import rerun` fail
    rrd = tmp_path / "ep0.rrd"
    code, out, err = run(
        capsys, ["dataset", "view", str(synth_store), "--episode", "0", "--rerun", str(rrd)]
    )
    assert code == 2 and out == "" and "pip install rerun-sdk" in err
    assert not rrd.exists()


def test_info_on_a_missing_store_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, ["dataset", "info", str(tmp_path)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"robot-learning: error: no episode store at {tmp_path} (the directory exists but holds "
        "no zarr.json)"
    ]
