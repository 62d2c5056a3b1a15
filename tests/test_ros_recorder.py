"""The recorder node writes ROS 2 topics into a Zarr store that ``dataset verify`` passes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_support import Listener, processes, wait_for

from robot_learning.data.store import EpisodeStore

pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_learning_ros.conversions import trajectory_msg
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS

JOINTS = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
    "gripper",
]


def test_recorder_writes_verified_episodes_from_commanded_motion(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    cams = ["-p", "cameras:=[scene]", "-p", "image_size:=[32,32]"]
    with processes(tmp_path) as procs:
        procs.start_node(
            "sim", "sim_node", "-p", "control_hz:=10.0", "-p", "sync_commands:=false", *cams
        )
        procs.start_node(
            "recorder",
            "recorder_node",
            "-p",
            f"store:={store_path}",
            "-p",
            "fps:=10.0",
            "-p",
            "task_description:=turn the base",
            *cams,
        )
        listener = Listener(procs.domain)
        try:
            states = listener.collect(JointState, "/joint_states", SENSOR_QOS)
            recorder = listener.diagnostics("recorder")
            wait_for(lambda: len(states) > 0, 60, "joint states from the sim node")
            recorder.wait(lambda s: not s["missing"], 60, "the recorder hearing the sim")
            start = np.array(states[-1][1].position)
            commands = listener.node.create_publisher(
                JointTrajectory, "/joint_trajectory_controller/joint_trajectory", COMMAND_QOS
            )
            # the sim and the recorder both listen before the first command goes out
            wait_for(lambda: commands.get_subscription_count() >= 2, 30, "command subscribers")

            def drive(seconds: float, offset: float) -> float:
                t_end = time.monotonic() + seconds
                k = 0
                while time.monotonic() < t_end:
                    k += 1
                    target = start.copy()
                    target[0] += offset + 0.01 * k  # turn the base a little more each tick
                    now = listener.node.get_clock().now().nanoseconds * 1e-9
                    commands.publish(trajectory_msg(JOINTS, target[None], [0.1], now))
                    time.sleep(0.1)
                return offset + 0.01 * k

            assert listener.call(Trigger, "/recorder/start").success
            reached = drive(2.0, 0.0)
            stopped = listener.call(SetBool, "/recorder/stop", SetBool.Request(data=True))
            assert stopped.success, stopped.message
            assert listener.call(Trigger, "/recorder/start").success
            drive(0.5, reached)
            assert listener.call(Trigger, "/recorder/discard").success
            assert not listener.call(SetBool, "/recorder/stop", SetBool.Request(data=True)).success
        finally:
            listener.close()
        assert procs.stop("recorder") == 0

    verify = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "dataset", "verify", str(store_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    store = EpisodeStore.open(store_path)
    try:
        assert store.n_episodes == 1  # the discarded one left nothing
        episode = store.read_episode(0)
        meta = store.episode_meta(0)
    finally:
        store.close()
    n = len(episode["action"])
    assert 10 <= n <= 25, n
    assert meta["success"] is True and meta["task"] == "turn the base"
    base_target = episode["action"][:, 0]
    # each step holds the latest command (the two streams are not synchronised)
    assert np.all(np.diff(base_target) >= 0) and base_target[-1] - base_target[0] > 0.1
    base = episode["joint_pos"][:, 0]
    assert base[-1] - base[0] > 0.05, "the recorded joints follow the commands"
    assert episode["scene_rgb"].shape == (n, 32, 32, 3)


def test_recorder_names_the_silent_topics_it_waits_for(tmp_path: Path) -> None:
    """With no robot publishing, an episode cannot take a step: diagnostics and the stop reply
    name the topics that are silent, and nothing is written."""
    store_path = tmp_path / "store"
    with processes(tmp_path) as procs:
        procs.start_node("recorder", "recorder_node", "-p", f"store:={store_path}")
        listener = Listener(procs.domain)
        try:
            recorder = listener.diagnostics("recorder")
            idle = recorder.wait(lambda s: True, 30, "the recorder's diagnostics")
            assert idle["recording"] == "False" and idle["level"] == "1"  # WARN
            assert "joint_pos (/joint_states)" in idle["missing"]
            assert "object_pos (/sim/state/object_pos)" in idle["missing"]
            assert listener.call(Trigger, "/recorder/start").success
            open_ = recorder.wait(lambda s: s["recording"] == "True", 30, "recording")
            assert open_["episode_steps"] == "0" and "no message yet on" in open_["message"]
            stopped = listener.call(SetBool, "/recorder/stop", SetBool.Request(data=True))
        finally:
            listener.close()
    assert not stopped.success
    assert "no steps" in stopped.message and "joint_pos (/joint_states)" in stopped.message
    with EpisodeStore.open(store_path) as store:
        assert store.n_episodes == 0


def test_a_node_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Path) -> None:
    """Background jobs inherit SIGINT ignored; a node must stop on it anyway, cleanly."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child
    try:
        with processes(tmp_path) as procs:
            procs.start_node("recorder", "recorder_node", "-p", f"store:={tmp_path / 'store'}")
            wait_for(lambda: "recording" in procs.output("recorder"), 60, "the recorder to start")
            assert procs.stop("recorder", signal.SIGINT, timeout_s=10.0) == 0
            assert "Thread 0x" not in procs.output("recorder")  # no stack dump: it was not hung
    finally:
        signal.signal(signal.SIGINT, previous)
