"""The ROS 2 closed loop in sim across real processes: bringup, episodes, e-stop, stale camera,
malformed messages. Each test has its own ROS_DOMAIN_ID and kills what it started."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from ros_support import (
    BRINGUP_DIR,
    Listener,
    Processes,
    free_port,
    processes,
    ros_env,
    wait_for,
)

from robot_learning.eval.rollout import evaluate
from robot_learning.eval.stats import wilson_interval
from robot_learning.policies import load_policy
from robot_learning.policies.scripted import ScriptedLiftPolicy
from robot_learning.sim.tasks.pick_language import COLORS

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from robot_learning_ros.conversions import (  # noqa: E402
    image_array,
    image_msg,
    joint_state_msg,
    trajectory_msg,
)
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS  # noqa: E402

PERIOD = 0.1
COMMANDS = "/joint_trajectory_controller/joint_trajectory"
CAMERA = "/camera/scene/color/image_raw"


def start_loop(
    procs: Processes, checkpoint: Path, *client_params: str, sim_params: tuple[str, ...] = ()
) -> int:
    """Policy server + sim node + policy client node, started directly (not through bringup)."""
    port = free_port()
    procs.start(
        "server",
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "serve",
            "--policy",
            str(checkpoint),
            "--port",
            str(port),
        ],
    )
    wait_for(lambda: _healthy(port), 60, "the policy server")
    procs.start_node("sim", "sim_node", "-p", "control_hz:=10.0", *sim_params)
    procs.start_node(
        "client",
        "policy_client_node",
        "-p",
        f"server_url:=ws://127.0.0.1:{port}",
        "-p",
        "autostart:=false",
        *client_params,
    )
    return port


def _healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def start_episode(listener: Listener, hold_first: bool = False) -> None:
    """Reset the sim, then the client; ``hold_first``: as the episode runner does, hold the arm
    first, so no chunk of the last episode reaches the new one."""
    if hold_first:
        assert listener.call(Trigger, "/policy_client/hold").success
    assert listener.call(Trigger, "/sim/reset").success
    assert listener.call(Trigger, "/policy_client/reset").success


def positions(
    msgs: list[tuple[float, JointTrajectory]], after: float, before: float = 1e18
) -> np.ndarray:
    rows = [list(m.points[0].positions) for t, m in msgs if after <= t < before]
    return np.asarray(rows)


def test_bringup_closed_loop_matches_eval_and_stops_cleanly(tmp_path: Path) -> None:
    checkpoint = ScriptedLiftPolicy(control_hz=10.0).save(tmp_path / "scripted_lift")
    out = tmp_path / "ros_episodes.json"
    episodes = 10
    with processes(tmp_path) as procs:
        bringup = procs.start(
            "bringup",
            [
                sys.executable,
                "-m",
                "robot_learning.cli",
                "bringup",
                str(BRINGUP_DIR / "sim_robot.yaml"),
                "--arg",
                f"policy={checkpoint}",
                "--arg",
                f"port={free_port()}",
            ],
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "robot_learning_ros.episode_runner",
                "--episodes",
                str(episodes),
                "--out",
                str(out),
                "--episode-timeout-s",
                "60",
            ],
            env=ros_env(procs.domain),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:] + procs.output("bringup")[-3000:]
        pids = [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", procs.output("bringup"))]
        assert len(pids) == 3
        code = procs.stop("bringup", signal.SIGINT, timeout_s=30)
    assert code == 130, procs.output("bringup")[-2000:]  # stopped on request, children healthy
    assert bringup.returncode == 130
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"bringup left processes behind: {alive}"

    ros = json.loads(out.read_text())
    assert ros["episodes"] == episodes
    assert [e["seed"] for e in ros["per_episode"]] == list(range(episodes))
    result = evaluate(load_policy(checkpoint), "lift", episodes, seed=0, num_envs=1, videos=0)
    ros_low, ros_high = wilson_interval(ros["successes"], episodes)
    # within noise: the two 95% intervals overlap, and the loop is not broken
    assert ros_low <= result.ci95_high and result.ci95_low <= ros_high, (ros, result.successes)
    assert ros["success_rate"] >= 0.7


def test_estop_holds_within_one_period_and_resume_moves_again(tmp_path: Path) -> None:
    checkpoint = ScriptedLiftPolicy(control_hz=10.0).save(tmp_path / "scripted_lift")
    with processes(tmp_path) as procs:
        start_loop(procs, checkpoint)
        listener = Listener(procs.domain)
        try:
            commands = listener.collect(JointTrajectory, COMMANDS, COMMAND_QOS)
            start_episode(listener)
            wait_for(lambda: len(commands) >= 6, 30, "commands from the policy client")
            assert listener.call(Trigger, "/policy_client/estop").success
            t_estop = time.monotonic()
            wait_for(  # however slow the loop runs on a loaded machine, it keeps commanding
                lambda: positions(commands, t_estop + PERIOD).shape[0] >= 5,
                20,
                "hold commands while e-stopped",
            )
            t_resume = time.monotonic()  # before the call: its first command may beat the reply
            assert listener.call(Trigger, "/policy_client/resume").success
            wait_for(
                lambda: positions(commands, t_resume).shape[0] >= 5, 20, "commands after resume"
            )
        finally:
            listener.close()
    moving = positions(commands, 0.0, t_estop)
    held = positions(commands, t_estop + PERIOD, t_resume)
    resumed = positions(commands, t_resume)
    assert np.abs(np.diff(moving[:, :6], axis=0)).max() > 5e-3, "the arm was moving before"
    assert held.shape[0] >= 5, "the client keeps commanding a hold while e-stopped"
    assert np.abs(held[:, :6] - held[0, :6]).max() < 1e-3, "no motion one period after e-stop"
    assert np.abs(np.diff(resumed[:, :6], axis=0)).max() > 1e-3, "resume moves again"
    assert "E-STOP latched" in procs.output("client")


def test_stale_camera_holds_and_malformed_messages_are_rejected(tmp_path: Path) -> None:
    checkpoint = ScriptedLiftPolicy(10.0, cameras=("scene",), image_size=(32, 32)).save(
        tmp_path / "scripted_cam"
    )
    with processes(tmp_path) as procs:
        start_loop(procs, checkpoint)
        listener = Listener(procs.domain)
        try:
            node = listener.node
            camera = node.create_publisher(Image, CAMERA, SENSOR_QOS)
            frame = np.zeros((32, 32, 3), np.uint8)
            streaming = {"on": True}

            def publish_frame() -> None:
                if streaming["on"]:
                    camera.publish(image_msg(frame, node.get_clock().now().nanoseconds * 1e-9))

            node.create_timer(PERIOD / 2, publish_frame)
            joints = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
            trajectories = node.create_publisher(JointTrajectory, COMMANDS, COMMAND_QOS)
            commands = listener.collect(JointTrajectory, COMMANDS, COMMAND_QOS)
            start_episode(listener)
            wait_for(lambda: len(commands) >= 5, 30, "commands while the camera streams")
            streaming["on"] = False
            t_stop = time.monotonic()
            stale_after = t_stop + 3 * PERIOD + 2 * PERIOD  # stale after 3 periods, one to act
            wait_for(
                lambda: positions(commands, stale_after).shape[0] >= 5,
                20,
                "commands once the camera went silent",
            )
            t_malformed = time.monotonic()
            # malformed input on the topics the client and the sim read (a few times: sensor
            # topics are best effort)
            for _ in range(5):
                now = node.get_clock().now().nanoseconds * 1e-9
                camera.publish(image_msg(np.zeros((32, 32), np.uint16), now))  # 16UC1, not rgb8
                camera.publish(image_msg(np.zeros((16, 16, 3), np.uint8), now))  # wrong size
                joints.publish(joint_state_msg(["j1", "j2"], np.zeros(2), now))
                trajectories.publish(
                    trajectory_msg(["elbow", "bogus_joint"], np.zeros((1, 2)), [0.1], now)
                )
                time.sleep(0.25)
            wait_for(
                lambda: (
                    "bogus_joint" in procs.output("sim")
                    and "16UC1" in procs.output("client")
                    and "16x16" in procs.output("client")
                    and "lacks joint" in procs.output("client")
                ),
                30,
                "rejection log lines",
            )
        finally:
            listener.close()
    held = positions(commands, stale_after, t_malformed)
    assert held.shape[0] >= 5
    assert np.abs(held[:, :6] - held[0, :6]).max() < 1e-3, "the arm holds once the camera is stale"
    client_log = procs.output("client")
    assert "stale_obs" in client_log and CAMERA in client_log
    assert "rejected joint trajectory" in procs.output("sim")


def _episode_status(msgs: list[tuple[float, String]], after: float) -> dict | None:
    """The newest episode status published after ``after`` (monotonic), decoded."""
    fresh = [json.loads(m.data) for t, m in msgs if t >= after]
    return fresh[-1] if fresh else None


def test_the_instruction_topic_drives_a_language_policy(tmp_path: Path) -> None:
    """The sim publishes its task's instruction on /instruction; an operator's overrides it."""
    checkpoint = ScriptedLiftPolicy(10.0, task="pick_language").save(tmp_path / "language")
    with processes(tmp_path) as procs:
        start_loop(procs, checkpoint, sim_params=("-p", "task:=pick_language"))
        listener = Listener(procs.domain)
        try:
            instructions = listener.collect(String, "/instruction", STATUS_QOS)
            status = listener.collect(String, "/sim/episode", STATUS_QOS)
            cubes = listener.collect(Image, "/sim/state/cubes_pos", SENSOR_QOS)
            # the sim's own instruction: the cube it names is lifted and the episode succeeds
            t0 = time.monotonic()
            start_episode(listener)
            wait_for(lambda: bool((_episode_status(status, t0) or {}).get("done")), 60, "episode 1")
            first = _episode_status(status, t0)
            assert first is not None and first["success"], (first, procs.output("client")[-3000:])
            assert instructions and instructions[-1][1].data == first["instruction"]

            # an operator publishes another instruction mid-episode: the policy follows it
            t1 = time.monotonic()
            start_episode(listener, hold_first=True)
            wait_for(lambda: _episode_status(status, t1) is not None, 30, "episode 2's status")
            given = (_episode_status(status, t1) or {})["instruction"]
            other = next(c for c in COLORS if c not in given.split())
            operator = listener.node.create_publisher(String, "/instruction", STATUS_QOS)
            operator.publish(String(data=f"could you hoist the {other} cube"))
            index = list(COLORS).index(other)

            def lifted() -> bool:
                return (
                    bool(cubes)
                    and float(
                        image_array(cubes[-1][1], encodings=("32FC1",)).reshape(-1, 3)[index, 2]
                    )
                    > 0.1
                )

            wait_for(lifted, 40, f"the {other} cube lifted")
        finally:
            listener.close()
    heights = image_array(cubes[-1][1], encodings=("32FC1",)).reshape(-1, 3)[:, 2]
    named = list(COLORS).index(next(c for c in COLORS if c in given.split()))
    assert heights[named] < 0.05, "the cube the sim named stays on the table"
    assert "rejected" not in procs.output("client")
