"""``robot-learning demo`` end to end, small: real collection, training, eval, ROS 2 loop, report.

The figures are meaningless at this size (4 demonstrations, 120 training steps); what is
checked is the pipeline: every stage runs the real command, the report shows exactly what
``eval`` and the ROS 2 loop produced, a re-run keeps finished stages, a changed setting is
refused instead of mixed into an existing store, and Ctrl-C during training leaves a run that
the next call resumes.
"""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from ros_support import fresh_domain

REPO = Path(__file__).resolve().parents[1]


def small_recipe(tmp_path: Path, steps: int, checkpoint_every: int) -> Path:
    """The demo recipe with a tiny denoiser, so a test trains in seconds."""
    recipe = yaml.safe_load((REPO / "policies" / "demo_lift_state.yaml").read_text())
    recipe["policy"]["unet_channels"] = [16, 32]
    recipe["train"].update(
        steps=steps, batch_size=32, checkpoint_every=checkpoint_every, log_every=5, warmup_steps=5
    )
    path = tmp_path / "tiny_recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def demo_command(out: Path, recipe: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "robot_learning.cli",
        "demo",
        "--out",
        str(out),
        "--recipe",
        str(recipe),
        "--demos",
        "4",
        "--eval-episodes",
        "2",
        "--ros-episodes",
        "1",
        "--videos",
        "1",
        "--ros-domain-id",
        str(fresh_domain()),
        *extra,
    ]


def demo_env() -> dict[str, str]:
    return dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))


def run_demo(cmd: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=demo_env())


@pytest.mark.timeout(600)  # five demo runs in one; about 3 minutes on 2 idle cores
def test_demo_stops_on_ctrl_c_resumes_runs_every_stage_and_reports_what_commands_printed(
    tmp_path: Path,
) -> None:
    """One demo directory through its life: Ctrl-C in training, resume to the end, re-run,
    a refused change, SIGTERM in the ROS 2 loop (one collection and training serve all)."""
    out = tmp_path / "demo"
    recipe = small_recipe(tmp_path, steps=120, checkpoint_every=5)
    cmd = demo_command(out, recipe)
    code, err = interrupt_when(
        cmd, (out / "policy" / "train_state").exists, signal.SIGINT, "a training checkpoint"
    )
    assert code == 130, err[-3000:]
    assert "stopped; run the same command again to resume" in err
    assert not (out / "stages" / "train.json").exists()
    metrics = (out / "policy" / "metrics.jsonl").read_text().splitlines()
    stopped_at = json.loads(metrics[-1])["step"]
    assert 0 < stopped_at < 120

    # the same command again: collection kept, training resumed where it stopped, then the rest
    done = run_demo([*cmd, "--json"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[1/5] collect: done in an earlier run, kept" in done.stderr
    assert "resuming the training" in done.stderr
    first = json.loads((out / "policy" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] <= stopped_at  # the log continues the interrupted run's
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for n, stage in enumerate(("collect", "train", "eval", "ros2", "report"), 1):
        assert f"[{n}/5] {stage}:" in done.stderr
        assert (out / "stages" / f"{stage}.json").is_file()
    # collection and training through the real commands
    collect = json.loads((out / "stages" / "collect.json").read_text())["result"]
    assert collect["episodes"] == 4 and collect["steps"] > 4 * 10
    train = json.loads((out / "stages" / "train.json").read_text())["result"]
    assert train["steps"] == 120 and (out / "policy" / "model.safetensors").is_file()
    # the report's numbers are the eval command's own output (eval.json) and the ROS 2 loop's
    page = (out / "report" / "index.html").read_text()
    rows = {r["name"]: r for r in summary["summary"]}
    for variant in ("train", "real-proxy"):
        printed = json.loads((out / "eval" / f"lift-{variant}" / "eval.json").read_text())
        row = rows[f"eval ({variant})"]
        assert (row["episodes"], row["successes"]) == (2, printed["successes"])
        assert row["rate"] == printed["success_rate"]
        cells = f"<td>eval ({variant})</td><td>{printed['successes']}/2</td>"
        assert cells + f"<td>{printed['success_rate']:.0%}</td>" in page
        assert f"{printed['latency_ms_p50']:.1f} / {printed['latency_ms_p99']:.1f} ms" in page
    ros = json.loads((out / "ros2" / "episodes.json").read_text())
    assert ros["episodes"] == 1 and len(ros["per_episode"]) == 1
    assert ros["command_latency_ms"], "the episode runner heard the client's commands"
    assert int(ros["policy_client"]["commands_sent"]) > 0
    ros_row = rows["ROS 2 loop (train)"]
    assert ros_row["successes"] == ros["successes"]
    p50 = float(np.percentile(ros["command_latency_ms"], 50))
    assert html.escape(f"observation -> command {p50:.1f}") in page
    # figures are real images; the videos and their stills are copied next to the page
    for name in ("success_rates.png", "latency.png", "training_curve.png"):
        with Image.open(out / "report" / name) as img:
            assert img.size[0] > 300 and img.size[1] > 200
    videos = sorted((out / "report" / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 1000 for v in videos)
    assert all(v.with_suffix(".png").is_file() for v in videos)
    assert all(f'src="videos/{v.name}"' in page for v in videos)

    # a third run keeps every finished stage (and only rebuilds the report)
    again = run_demo(cmd)
    assert again.returncode == 0, again.stderr[-3000:]
    for n, stage in enumerate(("collect", "train", "eval", "ros2"), 1):
        assert f"[{n}/5] {stage}: done in an earlier run, kept" in again.stderr
    assert "eval (train)" in again.stdout and "ROS 2 loop (train)" in again.stdout
    # more demonstrations for an existing store: refused, nothing is mixed or lost
    changed = run_demo([*cmd, "--demos", "5"])
    assert changed.returncode == 1
    assert "was collected with other settings (demos: 4 -> 5)" in changed.stderr
    assert "--fresh" in changed.stderr and "Traceback" not in changed.stderr

    # SIGTERM (a job supervisor stopping it) during the ROS 2 loop: every process it started
    # for the loop (server, sim node, client node, episode runner, bringup) is gone after
    domain = cmd[cmd.index("--ros-domain-id") + 1]
    code, err = interrupt_when(
        [*cmd, "--ros-episodes", "3"],
        lambda: any("policy_client_node" in c for c in processes_in_domain(domain)),
        signal.SIGTERM,
        "the ROS 2 loop's client node",
        settle_s=2.0,
    )
    assert code == 130, err[-3000:]
    assert "stopped; run the same command again to resume" in err
    assert processes_in_domain(domain) == []


def interrupt_when(
    cmd: list[str],
    ready: Callable[[], bool],
    sig: int,
    what: str,
    settle_s: float = 0.0,
) -> tuple[int, str]:
    """Start ``cmd``, send ``sig`` once ``ready()`` (then ``settle_s``); (exit status, stderr)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=demo_env()
    )
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"never saw {what}"
            time.sleep(0.2)
        time.sleep(settle_s)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def processes_in_domain(domain: str) -> list[str]:
    """Command lines of the live processes whose environment has ``ROS_DOMAIN_ID=domain``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if f"ROS_DOMAIN_ID={domain}".encode() in environ and cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--demos", "0"], "expected a positive integer"),
        (["--ros-domain-id", "300"], "ros_domain_id 300: must be 0-232"),
        (["--recipe", "no/such.yaml"], "recipe no/such.yaml does not exist"),
    ],
)
def test_bad_demo_arguments_fail_with_one_line(
    tmp_path: Path, extra: list[str], expected: str
) -> None:
    done = run_demo(
        [sys.executable, "-m", "robot_learning.cli", "demo", "--out", str(tmp_path), *extra], 60
    )
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
