"""The ``robot-learning`` command line: sim list/bench/view, demo, errors, ``python -m``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import pytest

from robot_learning.cli.main import main

REPO = Path(__file__).resolve().parents[1]
TASK_NAMES = {"lift", "push", "insert", "pick_language"}


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv", [[], ["sim"], ["sim", "list"], ["sim", "bench"], ["sim", "view"], ["demo"]]
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main([*argv, "--help"]) == 0
    assert "usage: robot-learning" in capsys.readouterr().out


def test_sim_list_json_lists_the_four_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    catalog = run_json(capsys, ["sim", "list", "--json"])
    assert {t["name"] for t in catalog["tasks"]} == TASK_NAMES
    assert all(t["description"] and t["robot"] == f"sim:{t['name']}" for t in catalog["tasks"])
    assert catalog["variants"] == ["default", "train", "real-proxy"]
    assert catalog["cameras"] == ["scene", "wrist"]
    assert set(catalog["control_modes"]) == {"ee_delta", "joint"}


def test_sim_list_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TASK_NAMES) and "real-proxy" in out


def test_sim_bench_json_reports_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(capsys, ["-q", "sim", "bench", "--task", "lift", "--json", "--seconds", "1"])
    assert r["task"] == "lift" and r["camera"] == "scene"
    assert (r["camera_height_px"], r["camera_width_px"]) == (96, 96)
    assert r["substeps"] == 25
    for key in ("state_steps_per_s", "camera_steps_per_s", "mj_steps_per_s"):
        assert r[key] > 0, key
    assert r["raw_env_steps_per_s"] == pytest.approx(r["mj_steps_per_s"] / r["substeps"])
    assert r["state_fraction_of_raw"] == pytest.approx(
        r["state_steps_per_s"] / r["raw_env_steps_per_s"]
    )
    assert r["state_steps_per_s"] > r["camera_steps_per_s"]


def test_sim_view_writes_a_readable_mp4(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "videos" / "lift.mp4"
    r = run_json(
        capsys,
        [
            "sim",
            "view",
            "--task",
            "lift",
            "--out",
            str(out),
            "--size",
            "64x96",
            "--seed",
            "1",
            "--json",
        ],
    )
    assert r["success"] is True
    assert r["video_frames"] == r["episode_steps"] + 1
    frames = imageio.mimread(out, format="FFMPEG", memtest=False)
    assert len(frames) == r["video_frames"]
    assert frames[0].shape == (64, 96, 3)


def test_unknown_task_exits_2_listing_valid_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["sim", "bench", "--task", "stack"])
    assert "unknown task 'stack'" in line
    assert all(name in line for name in TASK_NAMES)
    line = one_line_error(capsys, ["sim", "view", "--task", "stack", "--out", "x.mp4"])
    assert "lift" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--variant", "sunny"], "valid variants: default, train, real-proxy"),
        (["--size", "96"], "expected HxW"),
        (["--size", "0x96"], "must be positive"),
        (["--size", "95x96"], "must be even"),
        (["--camera", "top"], "valid cameras: scene, wrist"),
        (["--noise", "-1"], "expected a number >= 0"),
    ],
)
def test_bad_view_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], expected: str
) -> None:
    line = one_line_error(
        capsys, ["sim", "view", "--task", "lift", "--out", str(tmp_path / "v.mp4"), *extra]
    )
    assert expected in line
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["bringup", "missing.yaml", "--arg", "policy"], "--arg"),
        (
            ["eval", "--policy", "missing", "--task", "lift", "--episodes", "1"]
            + ["--task-opt", "=heldout"],
            "--task-opt",
        ),
        (
            ["collect", "--robot", "sim:lift", "--teleop", "scripted", "--episodes", "1"]
            + ["--out", "unused", "--teleop-opt", "speed"],
            "--teleop-opt",
        ),
    ],
)
def test_key_value_options_name_the_option_and_the_form(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    option: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_error(capsys, argv)
    assert f"{option} " in line and "expected KEY=VALUE, e.g." in line
    assert not (tmp_path / "unused").exists()


def test_python_dash_m_entry_point() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    proc = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "sim", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert {t["name"] for t in json.loads(proc.stdout)["tasks"]} == TASK_NAMES

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "sim",
            "view",
            "--task",
            "nope",
            "--out",
            "x.mp4",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "valid tasks:" in proc.stderr and "Traceback" not in proc.stderr
