"""The recording loop and ``robot-learning collect``: pacing, operator keys, labels, summary.

Real components throughout: the MuJoCo sim robot with a camera, the scripted teleop, a Zarr
store on disk. Operator keys are injected with ``ScriptedEvents`` (exact steps) or written to the
CLI's standard input through a pipe (the real ``TerminalKeys`` path).
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.interfaces import TeleopEvent
from drivers.registry import make_robot, make_teleop
from drivers.robots.sim import SimRobot
from drivers.teleop.scripted import ScriptedTeleop
from drivers.teleop.session_keys import event_for_key
from robot_learning.cli.main import main
from robot_learning.data import EpisodeStore
from robot_learning.data.collect_events import ScriptedEvents
from robot_learning.data.collect_loop import CollectSession, SessionConfig
from robot_learning.data.collect_status import StatusReporter, format_status
from robot_learning.data.collect_store import feature_mismatch
from robot_learning.data.rate import RateTimer
from robot_learning.specs import FeatureSpec, SpecDict

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS = 12
SEED = 100


# ---- rate timer --------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt


def test_rate_timer_sleeps_to_deadlines_without_drift() -> None:
    clock = FakeClock()
    timer = RateTimer(50.0, clock=clock, sleep=clock.sleep)
    timer.start()
    for _ in range(100):
        clock.now += 0.005  # 5 ms of work per 20 ms tick
        assert timer.sleep()
    stats = timer.stats()
    assert stats.overruns == 0 and stats.ticks == 100
    assert clock.now == pytest.approx(2.0)  # absolute deadlines: no accumulated error
    assert stats.achieved_hz == pytest.approx(50.0)


def test_rate_timer_counts_overruns_and_never_bursts_to_catch_up() -> None:
    clock = FakeClock()
    timer = RateTimer(100.0, clock=clock, sleep=clock.sleep)
    timer.start()
    clock.now += 0.035  # one tick takes 35 ms: 2.5 periods late
    assert not timer.sleep()
    assert clock.sleeps == []  # late: no sleep
    for _ in range(3):
        clock.now += 0.002
        assert timer.sleep()
    # after the overrun the schedule restarts from "now": full-period spacing, no zero sleeps
    assert clock.sleeps == pytest.approx([0.008, 0.008, 0.008])
    stats = timer.stats()
    assert stats.overruns == 1 and stats.max_late_s == pytest.approx(0.025)
    assert stats.achieved_hz == pytest.approx(4 / 0.065)  # honest: below the 100 Hz target


def test_rate_timer_free_running_and_bad_rates() -> None:
    clock = FakeClock()
    timer = RateTimer(0.0, clock=clock, sleep=clock.sleep)
    timer.start()
    for _ in range(10):
        clock.now += 0.001
        timer.sleep()
    assert clock.sleeps == [] and timer.stats().achieved_hz == pytest.approx(1000.0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            RateTimer(bad)


# ---- the loop on the real sim ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimRobot, ScriptedTeleop]]:
    robot = make_robot(
        "sim:lift", cameras=("scene",), image_size=(32, 32), max_episode_steps=MAX_STEPS
    )
    teleop = make_teleop("scripted", robot=robot)
    assert isinstance(robot, SimRobot) and isinstance(teleop, ScriptedTeleop)
    with robot, teleop:
        yield robot, teleop


def new_store(path: Path, robot: SimRobot) -> EpisodeStore:
    features = SpecDict({**robot.observation_spec().features, **robot.action_spec().features})
    return EpisodeStore.create(path, features, fps=20.0, robot="sim:lift")


def session(
    sim: tuple[SimRobot, ScriptedTeleop],
    store: EpisodeStore,
    schedule: dict[tuple[int, int], TeleopEvent],
    **config: object,
) -> CollectSession:
    robot, teleop = sim
    cfg = SessionConfig(
        **{
            "episodes": 2,
            "max_steps": MAX_STEPS,
            "fps": 20.0,
            "realtime": False,
            "task": "lift",
            "source": "teleop:scripted",
            "seed": SEED,
            **config,
        }  # type: ignore[arg-type]
    )
    events = ScriptedEvents(schedule)
    s = CollectSession(robot, teleop, store, cfg, events=[events])
    events.bind(s.stats)
    return s


def chunk_files(store: EpisodeStore, key: str) -> int:
    return sum(1 for p in (store.root / "data" / key).rglob("*") if p.is_file() and "c" in p.parts)


def test_recovery_episodes_start_recording_after_an_unrecorded_missed_grasp(
    tmp_path: Path,
) -> None:
    robot = make_robot("sim:lift", cameras=(), control_hz=10.0)
    teleop = make_teleop("scripted", robot=robot, recovery_prob=1.0)
    assert isinstance(robot, SimRobot) and isinstance(teleop, ScriptedTeleop)
    with robot, teleop, new_store(tmp_path / "s.zarr", robot) as store:
        cfg = SessionConfig(
            episodes=2, max_steps=75, fps=10.0, realtime=False, task="lift", seed=1,
            successes_only=True, auto_save=True,
        )  # fmt: skip
        stats = CollectSession(robot, teleop, store, cfg).run()
        assert stats.episodes_saved == 2
        for index in range(2):
            episode = store.read_episode(index)
            # the first recorded observation already shows the closed gripper and the cube down
            assert episode["gripper_pos"][0].max() > 0.5 * episode["gripper_pos"].max()
            assert episode["object_pos"][0][2] < 0.03
            # the recording shows the gripper opening (the recovery), then closing on the cube
            opened = int(np.argmin(episode["action"][:, 6]))
            assert episode["action"][opened, 6] < 0.5 < episode["action"][-1, 6]
    push = make_robot("sim:push", cameras=())
    with push, pytest.raises(ValueError, match="pick task"):
        make_teleop("scripted", robot=push, recovery_prob=0.5).connect()


def test_discard_and_rerecord_leave_no_trace(
    tmp_path: Path, sim: tuple[SimRobot, ScriptedTeleop]
) -> None:
    with new_store(tmp_path / "s.zarr", sim[0]) as store:
        stats = session(
            sim,
            store,
            {
                (0, 5): TeleopEvent.DISCARD,  # attempt 0 (seed 100): dropped, next scene
                (1, 3): TeleopEvent.RERECORD,  # attempt 1 (seed 101): same scene again
                (3, 4): TeleopEvent.SAVE,  # attempt 3 (seed 102): saved early by the operator
            },
        ).run()
        assert (stats.episodes_saved, stats.episodes_discarded, stats.episodes_rerecorded) == (
            2,
            1,
            1,
        )
        metas = store.episodes_meta()
        assert [m["index"] for m in metas] == [0, 1]
        assert [m["seed"] for m in metas] == [SEED + 1, SEED + 2]
        assert [m["length"] for m in metas] == [MAX_STEPS, 4]
        assert [m["end_reason"] for m in metas] == ["max_steps", "operator_save"]
        assert all(m["success"] is False for m in metas)  # the sim's label, not the key's
        n = store.n_steps
        assert n == MAX_STEPS + 4 == stats.steps_saved
        for key in store.array_keys():  # no rows of the dropped attempts anywhere
            assert store.array(key).shape[0] == n and store.timestamps_array(key).shape[0] == n
        assert chunk_files(store, "scene_rgb") == n
        first = store.read_episode(0, with_timestamps=True)
    # the re-recorded attempt and the saved episode 0 start from the same scene
    robot, _ = sim
    again = robot.reset(seed=SEED + 1)
    assert np.array_equal(first["object_pos"][0], again.values["object_pos"])
    jpeg_error = np.abs(first["scene_rgb"][0].astype(int) - again.values["scene_rgb"]).mean()
    assert jpeg_error < 3.0  # the same image up to JPEG loss
    # sim-clock stamps: observations every control period, action stamped when it executed
    assert np.allclose(np.diff(first["joint_pos.t"]), 0.05)
    assert np.array_equal(first["action.t"], first["joint_pos.t"])


def test_stop_key_discards_the_episode_in_progress(
    tmp_path: Path, sim: tuple[SimRobot, ScriptedTeleop]
) -> None:
    with new_store(tmp_path / "s.zarr", sim[0]) as store:
        stats = session(sim, store, {(1, 6): TeleopEvent.STOP}, episodes=5).run()
        assert stats.stopped and stats.episodes_saved == 1 and stats.episodes_discarded == 1
        assert store.n_episodes == 1 and store.array("scene_rgb").shape[0] == store.n_steps


def test_review_mode_waits_for_the_operator_after_the_episode_ends(
    tmp_path: Path, sim: tuple[SimRobot, ScriptedTeleop]
) -> None:
    with new_store(tmp_path / "s.zarr", sim[0]) as store:
        stats = session(
            sim,
            store,
            {(0, MAX_STEPS): TeleopEvent.DISCARD, (1, MAX_STEPS): TeleopEvent.SAVE},
            episodes=1,
            auto_save=False,
        ).run()
        assert stats.episodes_discarded == 1 and stats.episodes_saved == 1
        assert store.episode_meta(0)["seed"] == SEED + 1


def test_ctrl_c_discards_the_open_episode_and_keeps_committed_ones(
    tmp_path: Path, sim: tuple[SimRobot, ScriptedTeleop]
) -> None:
    class Interrupt:
        def __init__(self, s: CollectSession) -> None:
            self.s = s

        def poll(self) -> list[TeleopEvent]:
            if self.s.stats.attempt == 1 and self.s.stats.step == 5:
                raise KeyboardInterrupt
            return []

    with new_store(tmp_path / "s.zarr", sim[0]) as store:
        s = session(sim, store, {}, episodes=3)
        s.events.append(Interrupt(s))
        with pytest.raises(KeyboardInterrupt):
            s.run()
        assert s.stats.interrupted and s.stats.episodes_discarded == 1
        assert store.n_episodes == 1 and store.array("scene_rgb").shape[0] == MAX_STEPS
    with EpisodeStore.open(tmp_path / "s.zarr", mode="a") as reopened:
        assert not reopened.repair_report.repaired  # nothing was left to repair


def test_realtime_loop_reports_the_rate_it_achieved(
    tmp_path: Path, sim: tuple[SimRobot, ScriptedTeleop]
) -> None:
    class SlowStep:
        """Stalls the loop for 0.12 s at step 4: an overrun the loop must not hide."""

        def __init__(self, s: CollectSession) -> None:
            self.s = s

        def poll(self) -> list[TeleopEvent]:
            if self.s.stats.step == 4:
                time.sleep(0.12)
            return []

    with new_store(tmp_path / "s.zarr", sim[0]) as store:
        s = session(sim, store, {}, episodes=1, realtime=True, fps=50.0)
        s.events.append(SlowStep(s))
        t0 = time.monotonic()
        stats = s.run()
        wall = time.monotonic() - t0
        meta = store.episode_meta(0)
    assert wall >= (MAX_STEPS - 1) / 50.0 + 0.1  # paced, and the stall was not caught up
    assert stats.overruns >= 1 and meta["overruns"] >= 1
    assert meta["target_hz"] == 50.0
    assert 25.0 < meta["loop_rate_hz"] < 50.0  # honest: the stall shows in the achieved rate


# ---- helpers -----------------------------------------------------------------------------------
def test_feature_mismatch_names_the_feature() -> None:
    a = SpecDict(
        {"cam": FeatureSpec((8, 8, 3), "uint8", "rgb"), "q": FeatureSpec((6,), "float32", "lowdim")}
    )
    assert feature_mismatch(a, a) is None
    b = SpecDict({"cam": FeatureSpec((4, 4, 3), "uint8", "rgb"), "q": a["q"]})
    assert "'cam' differs" in (feature_mismatch(a, b) or "")
    c = SpecDict({"q": a["q"]})
    assert "'cam' is in the store" in (feature_mismatch(a, c) or "")
    assert "'cam'" in (feature_mismatch(c, a) or "") and "not in the store" in (
        feature_mismatch(c, a) or ""
    )


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_redraws_on_a_tty_and_logs_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from robot_learning.data.collect_state import SessionStats

    stats = SessionStats(episodes_target=5, episode=7, step=42, overruns=3, dropped_frames=1)
    stats.loop_rate_hz = 19.8
    line = format_status(stats, 3 * 1024 * 1024)
    for part in ("episode 1/5 (#7)", "step 42", "19.8 Hz", "overruns 3", "dropped 1", "3.0 MB"):
        assert part in line
    (tmp_path / "f.bin").write_bytes(b"x" * 2048)
    tty = TtyBuffer()
    reporter = StatusReporter(stats, tmp_path, tty, interval_s=0.05, help_line="[s] save").start()
    reporter.event("episode 7: saved")
    time.sleep(0.3)
    reporter.stop()
    text = tty.getvalue()
    assert "\r\x1b[K" in text and "episode 7: saved\n" in text and "[s] save" in text
    assert "disk 2.0 KB" in text
    quiet = TtyBuffer()
    silent = StatusReporter(stats, tmp_path, quiet, enabled=False, interval_s=0.05).start()
    silent.event("nothing")
    time.sleep(0.15)
    silent.stop()
    assert quiet.getvalue() == ""
    with caplog.at_level(logging.INFO, logger="robot_learning.cli.collect"):
        plain = StatusReporter(stats, tmp_path, io.StringIO(), interval_s=0.05, log_every_s=0.1)
        plain.start()
        plain.event("episode 8: saved")
        time.sleep(0.3)
        plain.stop()
    assert "episode 8: saved" in caplog.text and "step 42" in caplog.text


def test_hardware_success_label_comes_from_the_operator_key() -> None:
    """A robot without a success detector: s = success, f = failure, time-out = unlabelled."""
    session = CollectSession.__new__(CollectSession)
    session.robot = object()  # type: ignore[assignment]
    assert session._success_label("operator_save") is True
    assert session._success_label("operator_save_failure") is False
    assert session._success_label("max_steps") is None
    assert event_for_key("f") is TeleopEvent.SAVE_FAILURE


# ---- the command ------------------------------------------------------------------------------
def test_collect_json_summary_and_resume_numbering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo.zarr"
    argv = ["-q", "collect", "--robot", "sim:lift", "--teleop", "scripted", "--no-realtime"]
    argv += ["--cameras", "scene", "--image-size", "32x32", "--no-keys", "--out", str(out)]
    argv += ["--task", "lift the cube", "--operator", "ci", "--json", "--max-steps", "40"]
    assert main([*argv, "--episodes", "2"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["episodes_saved"] == 2 and first["episodes_in_store"] == 2
    assert first["successes"] == 2  # the lift expert succeeds well within 40 steps
    assert first["store"] == str(out) and first["bytes"] > 0 and first["target_hz"] == 0.0
    assert first["loop_rate_hz"] > 20 and first["overruns"] == 0 and not first["interrupted"]
    assert main([*argv, "--episodes", "1", "--resume"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["episodes_in_store"] == 3 and not any(second["repair"].values())
    with EpisodeStore.open(out) as store:
        metas = store.episodes_meta()
        assert [m["index"] for m in metas] == [0, 1, 2]
        assert [m["seed"] for m in metas] == [0, 1, 2]  # seeds continue with the numbering
        assert {m["task"] for m in metas} == {"lift the cube"} and metas[0]["operator"] == "ci"
        assert metas[0]["instruction"] and metas[0]["source"] == "teleop:scripted"
        assert all(m["success"] is True and m["end_reason"] == "success" for m in metas)
        assert store.fps == 20.0 and store.robot == "sim:lift"
        assert set(store.features) == {*store.array_keys()} and "action" in store.features
        assert store.roles["action"] == "action"
        stats = store.info["stats"]  # normalization statistics stored with the dataset
        assert stats["episodes"] == 3 and "action" in stats["features"]


def test_collect_live_view_writes_a_rerun_recording(tmp_path: Path) -> None:
    pytest.importorskip("rerun", reason="--view needs the optional rerun-sdk (extra 'viz')")
    out, rrd = tmp_path / "v.zarr", tmp_path / "live.rrd"
    argv = ["-q", "collect", "--robot", "sim:lift", "--teleop", "scripted", "--no-realtime"]
    argv += ["--cameras", "scene", "--image-size", "32x32", "--no-keys", "--out", str(out)]
    assert main([*argv, "--episodes", "1", "--max-steps", "10", "--view", str(rrd)]) == 0
    assert rrd.stat().st_size > 10 * 32 * 32  # ten logged frames at least
    assert main([*argv, "--resume", "--episodes", "1", "--view", str(tmp_path / "x.txt")]) == 2


def test_session_keys_through_standard_input(tmp_path: Path) -> None:
    """d and r typed on stdin (a pipe here, a terminal for a person) steer the real CLI."""
    store = tmp_path / "keys.zarr"
    exe = REPO / ".venv" / "bin" / "robot-learning"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "robot_learning.cli"]
    proc = subprocess.Popen(
        [*cmd, "collect", "--robot", "sim:lift", "--teleop", "scripted", "--episodes", "1"]
        + ["--cameras", "scene", "--image-size", "32x32", "--max-steps", "30", "--json"]
        + ["--out", str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stderr is not None
    lines: list[bytes] = []

    def wait_for(text: bytes) -> None:
        while True:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line, b"".join(lines).decode()
            lines.append(line)
            if text in line:
                return

    try:
        wait_for(b"recording 1 more")
        time.sleep(0.3)  # real time, 20 Hz: a few steps into episode 0
        proc.stdin.write(b"d")
        proc.stdin.flush()
        wait_for(b"discarded")
        time.sleep(0.3)
        proc.stdin.write(b"r")
        proc.stdin.flush()
        wait_for(b"re-recording")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert (summary["episodes_saved"], summary["episodes_discarded"]) == (1, 1)
    assert summary["episodes_rerecorded"] == 1
    with EpisodeStore.open(store) as s:
        assert s.n_episodes == 1 and s.episode_meta(0)["seed"] == 1  # d moved on; r did not
        assert s.array("scene_rgb").shape[0] == s.n_steps == s.episode_length(0)


# ---- multi-rate recorder -----------------------------------------------------------------------
def recorder_store(path: Path) -> EpisodeStore:
    features = SpecDict(
        {
            "cam_rgb": FeatureSpec((24, 32, 3), "uint8", "rgb"),
            "joint_pos": FeatureSpec((7,), "float64", "lowdim"),
            "action": FeatureSpec((7,), "float32", "lowdim"),
        }
    )
    return EpisodeStore.create(
        path, features, fps=30.0, async_streams=["cam_rgb", "joint_pos"], robot="bench"
    )


def test_stream_recorder_feeds_one_writer_from_many_threads(tmp_path: Path) -> None:
    import threading

    from robot_learning.data.recorder import STEP, StreamRecorder

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    with recorder_store(tmp_path / "r.zarr") as store:
        writer = store.new_episode(task="threads")
        recorder = StreamRecorder(writer).start()

        def produce(key: str, n: int, hz: float) -> None:
            t0 = time.monotonic()
            for k in range(n):
                t = t0 + k / hz
                time.sleep(max(0.0, t - time.monotonic()))
                if key == "cam_rgb":
                    recorder.submit(key, np.roll(base, k, axis=1), t, timeout_s=1 / hz)
                elif key == "joint_pos":
                    recorder.submit(key, np.full(7, float(k)), t, timeout_s=1 / hz)
                else:
                    recorder.submit_step({"action": np.full(7, k, np.float32)}, t, 1 / hz)

        threads = [
            threading.Thread(target=produce, args=args)
            for args in (("cam_rgb", 15, 30.0), ("joint_pos", 250, 500.0), (STEP, 15, 30.0))
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        recorder.stop()
        writer.commit()
        stats = recorder.stats
        assert all(s.dropped == 0 for s in stats.values())
        assert stats["cam_rgb"].recorded == stats["cam_rgb"].on_disk == 15
        assert len(stats["cam_rgb"].latency_s) == 15 and stats["cam_rgb"].latency_ms(50) > 0
        episode = store.read_episode(0, with_timestamps=True)
        assert len(episode["joint_pos"]) == 250 and len(episode["cam_rgb"]) == 15
        assert np.array_equal(episode["joint_pos"][:, 0], np.arange(250))  # in order, none lost
        assert np.all(np.diff(episode["joint_pos.t"]) > 0)
        assert len(episode["action"]) == store.episode_length(0) == 15


def test_stream_recorder_counts_a_sample_it_could_not_hand_over_as_dropped(
    tmp_path: Path,
) -> None:
    from robot_learning.data.recorder import StreamRecorder

    with recorder_store(tmp_path / "r.zarr") as store:
        writer = store.new_episode()
        recorder = StreamRecorder(writer, max_queue=2)  # consumer not started: the queue fills
        assert recorder.submit("joint_pos", np.zeros(7), 0.0, timeout_s=0.01)
        assert recorder.submit("joint_pos", np.ones(7), 0.001, timeout_s=0.01)
        t0 = time.monotonic()
        assert not recorder.submit("joint_pos", np.ones(7), 0.002, timeout_s=0.02)
        assert 0.015 < time.monotonic() - t0 < 0.5  # waited its deadline, no longer
        recorder.start()
        recorder.stop()
        s = recorder.stats["joint_pos"]
        assert (s.submitted, s.recorded, s.dropped) == (3, 2, 1)
        writer.discard()
