"""``robot-learning collect`` as a real process: kill -9 at random moments, locking, bad input.

Two chains of trials run side by side (one store each; 2 cores), every trial a fresh
``robot-learning collect --resume`` subprocess recording the sim with a camera, killed with
SIGKILL at a seeded random moment after it opened the store. After every kill the store is opened
read-only and every committed episode must be intact, ``dataset verify`` must pass, and the next
trial's resume must report its repair and continue the numbering.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from robot_learning.cli.main import main
from robot_learning.data import EpisodeStore

REPO = Path(__file__).resolve().parents[1]
TRIALS_PER_CHAIN = 10  # two chains: 20 kills
KILL_SEED = 20240611
COLLECT_ARGS = [
    "--robot",
    "sim:lift",
    "--teleop",
    "scripted",
    "--no-realtime",
    "--cameras",
    "scene",
    "--image-size",
    "32x32",
    "--max-steps",
    "15",
    "--no-keys",
]
ANNOUNCE = re.compile(r"(created|resuming) .*: (\d+) episode\(s\) stored")
SAVED = re.compile(r"episode (\d+): saved")


def cli() -> list[str]:
    exe = REPO / ".venv" / "bin" / "robot-learning"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "robot_learning.cli"]


def env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}


def start_collect(store: Path, *extra: str, episodes: int = 1000) -> subprocess.Popen[str]:
    resume = ["--resume"] if (store / "zarr.json").exists() else []
    return subprocess.Popen(
        [*cli(), "collect", *COLLECT_ARGS, "--episodes", str(episodes), "--out", str(store)]
        + resume
        + list(extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=REPO,
    )


def wait_for_announce(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, list[str]]:
    """Read stderr until the store is open; returns (episodes stored at open, lines so far)."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"collect exited before opening the store: {''.join(lines)}")
        lines.append(line)
        match = ANNOUNCE.search(line)
        if match:
            return int(match.group(2)), lines
    raise AssertionError(f"collect did not open the store in {timeout} s: {''.join(lines)}")


@dataclass
class Chain:
    store: Path
    rng: random.Random
    committed: list[dict] = field(default_factory=list)  # metadata of committed episodes
    checked_images: int = 0  # episodes whose frames were already decoded
    repairs_reported: int = 0
    kills: int = 0
    errors: list[str] = field(default_factory=list)


def check_store(chain: Chain) -> int:
    """Every committed episode intact; nothing committed earlier lost or changed."""
    with EpisodeStore.open(chain.store, mode="r") as store:
        metas = store.episodes_meta()
        n = store.n_episodes
        assert n >= len(chain.committed), f"committed episodes lost: {len(chain.committed)} -> {n}"
        for old, new in zip(chain.committed, metas):
            assert old == new, f"committed episode {old['index']} changed: {old} -> {new}"
        lowdim = [k for k in store.array_keys() if store.features[k].kind != "rgb"]
        for i in range(n):
            meta = store.episode_meta(i)
            assert meta["index"] == i and meta["length"] == store.episode_length(i) > 0
            assert meta["success"] in (True, False) and meta["source"] == "teleop:scripted"
            keys = lowdim if i < chain.checked_images - 1 else store.array_keys()
            episode = store.read_episode(i, keys=keys, with_timestamps=True)
            for key in keys:
                assert len(episode[key]) == meta["length"], (i, key)
                assert np.all(np.diff(episode[f"{key}.t"]) > 0), f"episode {i} {key} time"
            if "scene_rgb" in keys:
                frames = episode["scene_rgb"]
                assert frames.shape == (meta["length"], 32, 32, 3) and frames.std() > 1.0
        chain.committed = metas
        chain.checked_images = n
    assert main(["-q", "dataset", "verify", "--quick", str(chain.store)]) == 0
    return n


def run_chain(chain: Chain, trials: int) -> None:
    try:
        for trial in range(trials):
            before = len(chain.committed)
            proc = start_collect(chain.store)
            try:
                stored, lines = wait_for_announce(proc)
                assert stored == before, f"resume opened with {stored} episodes, expected {before}"
                # random kill times; the last one late enough that some episode has committed
                # even on a loaded machine, so "committed episodes survive" is always exercised
                last = trial == trials - 1
                time.sleep(3.0 if last else chain.rng.uniform(0.0, 0.7))
            finally:
                proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, (proc.returncode, err)
            text = "".join(lines) + err
            chain.repairs_reported += "repaired" in text
            saved = [int(m) for m in SAVED.findall(text)]
            assert saved == list(range(before, before + len(saved))), saved  # numbering
            chain.kills += 1
            assert check_store(chain) >= before + len(saved)
    except Exception as exc:  # reported by the test thread with the chain's name
        chain.errors.append(f"{chain.store.name}: {type(exc).__name__}: {exc}")


def test_kill_minus_9_never_costs_a_committed_episode(tmp_path: Path) -> None:
    seeds = random.Random(KILL_SEED)
    chains = [Chain(tmp_path / f"chain{i}.zarr", random.Random(seeds.random())) for i in range(2)]
    threads = [threading.Thread(target=run_chain, args=(c, TRIALS_PER_CHAIN)) for c in chains]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for chain in chains:
        assert not chain.errors, chain.errors
        assert chain.kills == TRIALS_PER_CHAIN
        assert len(chain.committed) > 0
        # a killed writer almost always leaves a streamed-frames tail: resumes must say so
        assert chain.repairs_reported >= TRIALS_PER_CHAIN // 2, chain.repairs_reported

    # a clean resume after the last kill: repair reported, numbering continues, verify passes
    chain = chains[0]
    before = len(chain.committed)
    done = subprocess.run(
        [*cli(), "collect", *COLLECT_ARGS, "--episodes", "2", "--out", str(chain.store)]
        + ["--resume", "--json"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes_saved"] == 2 and summary["episodes_in_store"] == before + 2
    assert summary["repair"]["steps_dropped"] >= 0 and "steps_dropped" in summary["repair"]
    assert "repaired" in done.stderr or not any(summary["repair"].values())
    assert check_store(chain) == before + 2
    verify = subprocess.run(
        [*cli(), "dataset", "verify", str(chain.store), "--json"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


def test_second_writer_is_refused_and_sigterm_keeps_committed_episodes(tmp_path: Path) -> None:
    store = tmp_path / "locked.zarr"
    first = subprocess.Popen(
        [*cli(), "collect", *COLLECT_ARGS[:4], "--cameras", "scene", "--image-size", "32x32"]
        + ["--max-steps", "8", "--episodes", "1000", "--no-keys", "--out", str(store)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=REPO,
    )
    try:
        wait_for_announce(first)
        second = subprocess.run(
            [*cli(), "collect", *COLLECT_ARGS, "--episodes", "1", "--out", str(store), "--resume"],
            capture_output=True,
            text=True,
            env=env(),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        assert second.returncode == 2
        errors = [ln for ln in second.stderr.splitlines() if "error" in ln]
        assert len(errors) == 1 and f"already open for writing by pid {first.pid}" in errors[0]
        assert "Traceback" not in second.stderr
        time.sleep(0.3)  # real time (20 Hz, 8 steps): let at least one episode commit
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert out.startswith("interrupted: ") and "Traceback" not in err
    with EpisodeStore.open(store, mode="a") as reopened:  # the lock was released
        n = reopened.n_episodes
    assert n >= 1
    chain = Chain(store, random.Random(0))
    assert check_store(chain) == n


def listing(path: Path) -> dict[str, tuple[int, int]]:
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["-q", "collect", "--episodes", "1", "--no-keys", "--no-realtime"]
    sim = ["--robot", "sim:lift", "--teleop", "scripted"]
    new = tmp_path / "new" / "x.zarr"

    msg = one_line_error(capsys, [*base, *sim, "--out", str(new), "--resume"])
    assert "no episode store" in msg and "drop --resume" in msg
    msg = one_line_error(
        capsys, [*base, "--robot", "sim:nope", "--teleop", "scripted", "--out", str(new)]
    )
    assert "sim:nope" in msg and "sim:lift" in msg
    msg = one_line_error(
        capsys, [*base, "--robot", "sim:lift", "--teleop", "joystick", "--out", str(new)]
    )
    assert "joystick" in msg and "scripted" in msg
    msg = one_line_error(capsys, [*base, *sim, "--cameras", "top", "--out", str(new)])
    assert "top" in msg and "scene" in msg
    assert not (tmp_path / "new").exists()

    made = tmp_path / "made.zarr"
    record = [*base, *sim, "--cameras", "scene", "--image-size", "32x32", "--max-steps", "3"]
    assert main([*record, "--out", str(made)]) == 0
    capsys.readouterr()
    before = listing(made)
    msg = one_line_error(capsys, [*record, "--out", str(made)])
    assert "already holds an episode store" in msg and "--resume" in msg
    msg = one_line_error(
        capsys,
        [*base, *sim, "--cameras", "scene", "--image-size", "48x48", "--out", str(made)]
        + ["--resume"],
    )
    assert "scene_rgb" in msg and "(32, 32, 3)" in msg and "(48, 48, 3)" in msg
    msg = one_line_error(
        capsys,
        [*base, *sim, "--cameras", "scene,wrist", "--image-size", "32x32"]
        + ["--out", str(made), "--resume"],
    )
    assert "wrist_rgb" in msg
    msg = one_line_error(capsys, [*record, "--fps", "10", "--out", str(made), "--resume"])
    assert "20 Hz" in msg and "--fps 20" in msg
    assert listing(made) == before
