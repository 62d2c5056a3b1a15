"""Recording a leader-arm teleop session through ROS 2, across real processes.

The leader arm is the Dynamixel protocol 2.0 bus emulator on a pty, read by the real
``dynamixel_sdk`` inside the teleop node; the sim node executes the node's JointTrajectory
commands; the recorder node writes the episode into a real Zarr store, which the CLI verifies.
Each test has its own ROS_DOMAIN_ID and kills what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ros_support import Listener, Processes, processes, ros_env, wait_for

from drivers.arms.dynamixel_bus import rad_to_ticks
from drivers.emulators.dynamixel_bus import DynamixelBusEmulator
from robot_learning.data.store import EpisodeStore
from robot_learning.sim.robot_model import ARM_JOINTS, HOME_QPOS

rclpy = pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from robot_learning_ros.conversions import joint_positions, joint_state_msg  # noqa: E402
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS  # noqa: E402

pytestmark = pytest.mark.ros

COMMANDS = "/joint_trajectory_controller/joint_trajectory"
IDS = (1, 2, 3, 4, 5, 6)
GRIPPER_ID = 7
SIGNS = (1.0, -1.0, 1.0, 1.0, -1.0, 1.0)  # two leader joints turn opposite to the robot's
GRIPPER_OPEN, GRIPPER_CLOSED = 2000, 2400
JOINTS = (*ARM_JOINTS, "gripper")


def write_calibration(path: Path) -> Path:
    """Centre ticks (2048) read as the sim's home pose; joints listed in reverse order."""
    joints = [
        {"name": n, "id": i, "sign": s, "offset": -s * float(h), "reference": float(h)}
        for n, i, s, h in zip(ARM_JOINTS, IDS, SIGNS, HOME_QPOS)
    ][::-1]
    gripper = {"id": GRIPPER_ID, "open_ticks": GRIPPER_OPEN, "closed_ticks": GRIPPER_CLOSED}
    path.write_text(yaml.safe_dump({"baudrate": 1000000, "joints": joints, "gripper": gripper}))
    return path


def leader_ticks(q: np.ndarray, gripper: float) -> dict[int, int]:
    """Servo ticks that make the calibrated leader read joint angles ``q`` and ``gripper``."""
    ticks = {
        i: rad_to_ticks(s * (float(v) - float(h))) for i, s, v, h in zip(IDS, SIGNS, q, HOME_QPOS)
    }
    ticks[GRIPPER_ID] = round(GRIPPER_OPEN + gripper * (GRIPPER_CLOSED - GRIPPER_OPEN))
    return ticks


def yaml_string(text: str) -> str:
    """A ``-p`` value that rcl reads as a string (an unquoted ``{...}`` would be a mapping)."""
    return "'" + text.replace("'", "''") + "'"


def start_teleop(procs: Processes, bus: DynamixelBusEmulator, calibration: Path) -> None:
    procs.start_node(
        "teleop",
        "teleop_node",
        "-p",
        "device:=leader",
        "-p",
        "device_args:=" + yaml_string(f"{{port: {bus.port}, calibration: {calibration}}}"),
        "-p",
        "rate_hz:=10.0",
    )


def latest_joints(states: list[tuple[float, JointState]]) -> np.ndarray:
    return joint_positions(states[-1][1], ARM_JOINTS)


def test_leader_teleop_session_is_recorded_through_ros(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    calibration = write_calibration(tmp_path / "leader.yaml")
    home = np.asarray(HOME_QPOS, dtype=np.float64)
    misaligned = home.copy()
    misaligned[ARM_JOINTS.index("elbow_joint")] += 0.6
    pan, lift, elbow = (
        ARM_JOINTS.index(n) for n in ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint")
    )
    with DynamixelBusEmulator.with_servos([*IDS, GRIPPER_ID]) as bus, processes(tmp_path) as procs:
        bus.set_positions(leader_ticks(misaligned, 0.0))  # the operator holds it elsewhere
        procs.start_node("sim", "sim_node", "-p", "control_hz:=10.0")
        procs.start_node(
            "recorder",
            "recorder_node",
            "-p",
            f"store:={store_path}",
            "-p",
            "sim_task:=lift",
            "-p",
            "fps:=10.0",
        )
        start_teleop(procs, bus, calibration)
        listener = Listener(procs.domain)
        try:
            states = listener.collect(JointState, "/joint_states", SENSOR_QOS)
            commands = listener.collect(JointTrajectory, COMMANDS, COMMAND_QOS)
            recorder = listener.diagnostics("recorder")
            assert listener.call(Trigger, "/sim/reset").success
            wait_for(lambda: len(states) >= 3, 30, "/joint_states from the sim")
            wait_for(
                lambda: "move the leader to the robot's pose" in procs.output("teleop"),
                30,
                "the teleop node's alignment warning",
            )
            assert not commands, "a misaligned leader must not command the arm"
            assert "elbow_joint is +0.600 rad from the arm's" in procs.output("teleop")

            q0 = latest_joints(states)
            np.testing.assert_allclose(q0, home, atol=0.02)  # the sim waits for a first command
            bus.set_positions(leader_ticks(q0, 0.0))
            wait_for(lambda: len(commands) >= 2, 20, "commands once the leader is aligned")
            recorder.wait(  # the recorder hears every topic and the teleop node's commands
                lambda s: not s["missing"] and int(s["commands_received"]) > 0,
                30,
                "the recorder to hear the sim and the teleop node",
            )
            assert listener.call(Trigger, "/recorder/start").success
            recorder.wait(lambda s: int(s["episode_steps"]) > 0, 30, "a first recorded step")

            delta = np.zeros(6)
            delta[pan], delta[lift] = -0.2, -0.15  # lift: a sign -1 servo
            for k in range(1, 21):  # ~2 s of the operator moving the leader
                bus.set_positions(leader_ticks(q0 + delta * k / 20, 0.6 * k / 20))
                time.sleep(0.1)
            final = q0 + delta
            wait_for(  # the leader's last pose is commanded ...
                lambda: np.allclose(commands[-1][1].points[0].positions[:6], final, atol=3e-3),
                20,
                "the leader's final pose commanded",
            )
            fresh = recorder.wait(lambda s: True, 10, "a fresh recorder status")
            steps = int(fresh["episode_steps"])
            recorder.wait(  # ... and recorded as the action of later steps
                lambda s: int(s["episode_steps"]) >= steps + 3, 30, "steps after it"
            )
            stop = listener.call(SetBool, "/recorder/stop", SetBool.Request(data=True))
            assert stop.success, stop.message
            q_end = latest_joints(states)
        finally:
            listener.close()
        teleop_log = procs.output("teleop")

    assert "leader aligned with the arm" in teleop_log
    assert "Traceback" not in teleop_log
    first = np.asarray(commands[0][1].points[0].positions)
    assert list(commands[0][1].joint_names) == list(JOINTS)
    np.testing.assert_allclose(first[:6], q0, atol=5e-3)  # the aligned pose, not the jump
    assert q_end[pan] - q0[pan] < -0.12 and q_end[lift] - q0[lift] < -0.08

    verify = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "dataset", "verify", str(store_path)],
        env=ros_env(0),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    with EpisodeStore.open(store_path) as store:
        assert store.n_episodes == 1
        assert store.episode_meta(0).get("success") is True
        episode = store.read_episode(0)
    action = np.asarray(episode["action"], dtype=np.float64)
    joint_pos = np.asarray(episode["joint_pos"], dtype=np.float64)
    assert action.shape[0] >= 5 and action.shape[1] == 7
    tick = 2 * np.pi / 4096
    # the recorded targets follow the leader: start at the aligned pose, end at the moved one
    np.testing.assert_allclose(action[0, :6], q0, atol=0.05)
    np.testing.assert_allclose(action[-1, :6], q0 + delta, atol=2 * tick)
    assert action[-1, 6] == pytest.approx(0.6, abs=0.01)
    assert np.all(np.diff(action[:, pan]) <= 2 * tick), "the pan target only moved one way"
    assert np.all(np.diff(action[:, lift]) <= 2 * tick), "the lift target only moved one way"
    assert np.abs(action[:, elbow] - q0[elbow]).max() < 2 * tick, "an untouched joint stayed"
    # and the sim arm followed the same way
    assert joint_pos[-1, pan] - joint_pos[0, pan] < -0.12
    assert joint_pos[-1, lift] - joint_pos[0, lift] < -0.08
    assert abs(joint_pos[-1, elbow] - joint_pos[0, elbow]) < 0.05


def test_silent_leader_servo_stops_the_teleop_node_naming_it(tmp_path: Path) -> None:
    calibration = write_calibration(tmp_path / "leader.yaml")
    home = np.asarray(HOME_QPOS, dtype=np.float64)
    with DynamixelBusEmulator.with_servos([*IDS, GRIPPER_ID]) as bus, processes(tmp_path) as procs:
        bus.set_positions(leader_ticks(home, 0.0))
        start_teleop(procs, bus, calibration)
        listener = Listener(procs.domain)
        try:
            node = listener.node
            pub = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
            pose = np.concatenate([home, [0.0]])
            node.create_timer(0.1, lambda: pub.publish(joint_state_msg(JOINTS, pose, time.time())))
            commands = listener.collect(JointTrajectory, COMMANDS, COMMAND_QOS)
            wait_for(lambda: len(commands) >= 3, 30, "commands from the teleop node")
            bus.servo(5).responsive = False  # the wrist_2 servo loses power mid-session
            t_silent = time.monotonic()
            proc = procs.procs["teleop"]
            wait_for(lambda: proc.poll() is not None, 15, "the teleop node to exit")
            t_exit = time.monotonic()
            time.sleep(0.3)
        finally:
            listener.close()
    log = procs.output("teleop")
    assert proc.returncode == 1, log[-2000:]
    assert "no answer from servo id(s) [5]" in log and "stopping the node" in log, log[-2000:]
    assert t_exit - t_silent < 10.0
    late = [t for t, _ in commands if t > t_silent + 1.0]
    assert not late, "no commands once the servo went silent"


def test_keyboard_tcp_deltas_and_session_keys_drive_the_recorder(tmp_path: Path) -> None:
    """tcp-delta teleop through the IK mapper, and save / failure / discard / stop keys."""
    store_path = tmp_path / "store"
    fifo = tmp_path / "keys"
    os.mkfifo(fifo)
    keys = os.open(fifo, os.O_RDWR)  # a writer exists, so the node's stdin opens at once
    node = [sys.executable, "-c", "from robot_learning_ros.teleop_node import main; main()"]
    try:
        with processes(tmp_path) as procs:
            procs.start_node("sim", "sim_node", "-p", "control_hz:=10.0")
            procs.start_node(
                "recorder", "recorder_node", "-p", f"store:={store_path}", "-p", "fps:=10.0"
            )
            procs.start(  # the keyboard teleop reads its stdin, here the fifo
                "teleop",
                ["sh", "-c", 'f=$1; shift; exec "$@" < "$f"', "sh", str(fifo), *node]
                + [
                    "--ros-args",
                    "-p",
                    "device:=keyboard",
                    "-p",
                    "device_args:=" + yaml_string("{speed: 0.2}"),
                ],
            )
            listener = Listener(procs.domain)
            try:
                commands = listener.collect(JointTrajectory, COMMANDS, COMMAND_QOS)
                recorder = listener.diagnostics("recorder")
                assert listener.call(Trigger, "/sim/reset").success
                wait_for(lambda: len(commands) >= 3, 30, "hold commands from the keyboard teleop")
                recorder.wait(
                    lambda s: not s["missing"] and int(s["commands_received"]) > 0,
                    30,
                    "the recorder to hear the sim and the teleop node",
                )
                assert listener.call(Trigger, "/recorder/start").success
                recorder.wait(lambda s: int(s["episode_steps"]) > 0, 30, "a first recorded step")

                def press(key: str, times: int = 1) -> None:
                    for _ in range(times):
                        os.write(keys, key.encode())
                        time.sleep(0.1)

                def logged(text: str) -> None:
                    wait_for(lambda: text in procs.output("teleop"), 15, repr(text))

                press("i", 10)  # +x, one 1 cm step per press
                time.sleep(0.5)
                press("f")  # keep it, labelled a failure; the next episode starts
                logged("episode 0 committed")
                press("j", 10)  # +y
                time.sleep(0.5)
                press("s")
                logged("episode 1 committed")
                time.sleep(0.5)
                press("d")
                logged("episode discarded")
                time.sleep(1.0)
                press("q")  # the session ends: the open episode is kept
                logged("episode 2 committed")
            finally:
                listener.close()
            log = procs.output("teleop")
    finally:
        os.close(keys)

    for event in ("save_failure", "save", "discard", "stop"):
        assert f"operator event: {event}" in log
    assert "tcp-delta actions" in log
    with EpisodeStore.open(store_path) as store:
        assert store.n_episodes == 3
        assert [m.get("success") for m in store.episodes_meta()] == [False, True, True]
        first, second = store.read_episode(0), store.read_episode(1)
    moved_x = np.asarray(first["ee_pos"][-1]) - np.asarray(first["ee_pos"][0])
    moved_y = np.asarray(second["ee_pos"][-1]) - np.asarray(second["ee_pos"][0])
    assert moved_x[0] > 0.005 and abs(moved_x[1]) < 0.5 * moved_x[0], moved_x
    assert moved_y[1] > 0.005 and abs(moved_y[0]) < 0.5 * moved_y[1], moved_y
