"""The camera, tactile and arm nodes as separate processes, observed over real DDS with rclpy.

Each node runs as its own Python process on a private ``ROS_DOMAIN_ID`` in front of a real
driver: OpenCV on a video file written here, AnySkin on the pty board emulator, the MuJoCo
``SimArm``. The test process subscribes and publishes with its own rclpy context.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "ros2_ws" / "src" / "robot_learning_ros"
if str(PACKAGE_DIR) not in sys.path:  # the ament package is not pip-installed in the venv
    sys.path.insert(0, str(PACKAGE_DIR))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from drivers.emulators.anyskin_serial import AnySkinEmulator  # noqa: E402
from robot_learning_ros import topics  # noqa: E402
from robot_learning_ros.conversions import (  # noqa: E402
    from_stamp,
    image_array,
    joint_positions,
    trajectory_msg,
)
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS  # noqa: E402

pytestmark = pytest.mark.ros

UR_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)


# ---- processes and contexts ----------------------------------------------------------------------
@contextmanager
def node_process(
    module: str, params: dict[str, str], domain: int, log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``robot_learning_ros.<module>`` with ``params``; always stop it (SIGINT, then kill)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_DIR), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.update(ROS_DOMAIN_ID=str(domain), MUJOCO_GL="egl", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", f"from robot_learning_ros.{module} import main; main()"]
    cmd.append("--ros-args")
    for name, value in params.items():
        cmd += ["-p", f"{name}:={value}"]
    with open(log_dir / f"{module}.out", "wb") as out, open(log_dir / f"{module}.err", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def stderr_of(log_dir: Path, module: str) -> str:
    return (log_dir / f"{module}.err").read_text(errors="replace")


def yaml_string(text: str) -> str:
    """A ``-p`` value that rcl reads as a string (an unquoted ``{...}`` would be a mapping)."""
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def ros_node(request: pytest.FixtureRequest) -> Iterator[Callable[[int], tuple[Node, Any]]]:
    """``make(domain) -> (node, executor)`` in a private context, shut down afterwards."""
    made: list[tuple[Context, Node, SingleThreadedExecutor]] = []

    def make(domain: int) -> tuple[Node, SingleThreadedExecutor]:
        ctx = Context()
        rclpy.init(context=ctx, domain_id=domain)
        node = Node(f"probe_{request.node.name.replace('[', '_').strip(']')}", context=ctx)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        made.append((ctx, node, executor))
        return node, executor

    yield make
    for ctx, node, executor in made:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        ctx.try_shutdown()


def spin_until(
    executor: SingleThreadedExecutor,
    done: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Spin until ``done()``; stop early (False) when ``proc`` died or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if done():
            return True
        if proc is not None and proc.poll() is not None:
            return False
    return done()


# ---- camera --------------------------------------------------------------------------------------
def write_video(path: Path, frames: int = 30, size: tuple[int, int] = (64, 48)) -> None:
    """An MJPG .avi: left half pure red, right half pure blue (catches a BGR/RGB swap)."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = (0, 0, 255)  # BGR red
    frame[:, width // 2 :] = (255, 0, 0)  # BGR blue
    for _ in range(frames):
        writer.write(frame)
    writer.release()


def test_camera_node_publishes_rgb_frames_and_camera_info(tmp_path: Path, ros_node: Any) -> None:
    domain = 151
    video = tmp_path / "clip.avi"
    write_video(video, frames=15)
    node, executor = ros_node(domain)
    images: list[Image] = []
    infos: list[CameraInfo] = []
    node.create_subscription(Image, topics.color_topic("wrist"), images.append, SENSOR_QOS)
    node.create_subscription(CameraInfo, topics.color_info_topic("wrist"), infos.append, SENSOR_QOS)
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    params = {
        "driver": "opencv",
        "driver_args": yaml_string(f"{{source: {video}, loop: true}}"),
        "camera_name": "wrist",
    }
    with node_process("camera_node", params, domain, tmp_path) as proc:
        # 15 frames at 30 fps: 20 messages span a loop of the file
        ok = spin_until(executor, lambda: len(images) >= 20 and len(infos) >= 3, 40.0, proc)
        assert ok, f"{len(images)} images, {len(infos)} infos\n{stderr_of(tmp_path, 'camera_node')}"
        assert spin_until(executor, lambda: len(diagnostics) >= 1, 5.0, proc)
    rgb = image_array(images[-1], shape=(48, 64), encodings=("rgb8",))
    assert images[-1].header.frame_id == "wrist_color_optical_frame"
    left, right = rgb[:, 4:28].reshape(-1, 3).mean(0), rgb[:, 36:60].reshape(-1, 3).mean(0)
    assert left[0] > 200 and left[2] < 60, f"left half should be red, mean RGB {left}"
    assert right[2] > 200 and right[0] < 60, f"right half should be blue, mean RGB {right}"
    stamps = [from_stamp(m.header.stamp) for m in images]
    assert all(b > a for a, b in itertools.pairwise(stamps)), f"stamps not increasing: {stamps}"
    assert (infos[-1].height, infos[-1].width) == (48, 64)
    assert infos[-1].k[0] > 0 and infos[-1].header.frame_id == "wrist_color_optical_frame"
    status = diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "camera_node: wrist" and int(values["frames_published"]) > 0, values


@pytest.mark.parametrize(
    ("case", "domain", "expected"),
    [("missing_file", 152, "does not exist"), ("end_of_file", 153, "ended after 5 frames")],
)
def test_camera_node_exits_nonzero_on_driver_error(
    tmp_path: Path, case: str, domain: int, expected: str
) -> None:
    video = tmp_path / "clip.avi"
    if case == "end_of_file":
        write_video(video, frames=5)
    params = {"driver": "opencv", "driver_args": yaml_string(f"{{source: {video}}}")}
    with node_process("camera_node", params, domain, tmp_path) as proc:
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"camera node still running\n{stderr_of(tmp_path, 'camera_node')}")
    err = stderr_of(tmp_path, "camera_node")
    assert code == 1, err
    assert expected in err and str(video) in err, err
    assert "Traceback" not in err, err


# ---- tactile -------------------------------------------------------------------------------------
def test_tactile_node_publishes_anyskin_fields_and_rezeroes(tmp_path: Path, ros_node: Any) -> None:
    domain = 154
    node, executor = ros_node(domain)
    received: list[Image] = []
    node.create_subscription(Image, topics.tactile_topic("skin"), received.append, SENSOR_QOS)
    rezero = node.create_client(Trigger, "/tactile/rezero")
    first = np.arange(15, dtype=np.float64).reshape(5, 3) * 10.0 - 40.0
    second = first + np.array([5.0, -7.5, 120.0])

    def latest_equals(expected: np.ndarray) -> Callable[[], bool]:
        def check() -> bool:
            if not received:
                return False
            values = image_array(received[-1], shape=(5, 3), encodings=("32FC1",))
            return bool(np.allclose(values, expected, atol=1e-4))

        return check

    with AnySkinEmulator(num_magnetometers=5, rate_hz=100.0) as board:
        board.set_values(first)
        params = {
            "driver": "anyskin",
            "driver_args": yaml_string(f"{{port: {board.port}, name: skin, timeout_s: 3.0}}"),
            "rate_hz": "50.0",
        }
        with node_process("tactile_node", params, domain, tmp_path) as proc:
            err = lambda: stderr_of(tmp_path, "tactile_node")  # noqa: E731
            assert spin_until(executor, latest_equals(first), 40.0, proc), err()
            msg = received[-1]
            assert (msg.encoding, msg.height, msg.width) == ("32FC1", 5, 3)
            board.set_values(second)
            assert spin_until(executor, latest_equals(second), 10.0, proc), err()
            stamps = [from_stamp(m.header.stamp) for m in received]
            assert all(b > a for a, b in itertools.pairwise(stamps)), "a reading was republished"
            # a stalled board: the driver keeps returning its last reading, the node sends nothing
            board.pause()
            spin_until(executor, lambda: False, 0.3, proc)
            count = len(received)
            spin_until(executor, lambda: False, 1.0, proc)
            assert len(received) == count, "the same reading was published again"
            board.resume()
            # the baseline becomes the current field, so readings drop to zero
            assert rezero.wait_for_service(timeout_sec=10.0)
            future = rezero.call_async(Trigger.Request())
            assert spin_until(executor, future.done, 10.0, proc), err()
            assert future.result().success, future.result().message
            assert spin_until(executor, latest_equals(np.zeros((5, 3))), 10.0, proc), err()


# ---- arm -----------------------------------------------------------------------------------------
def test_arm_node_follows_trajectories_by_name_and_rejects_bad_ones(
    tmp_path: Path, ros_node: Any
) -> None:
    domain = 155
    node, executor = ros_node(domain)
    states: list[JointState] = []
    node.create_subscription(JointState, topics.JOINT_STATES, states.append, SENSOR_QOS)
    command = node.create_publisher(
        JointTrajectory, topics.trajectory_topic("joint_trajectory_controller"), COMMAND_QOS
    )
    hold = node.create_client(Trigger, "/arm/hold")
    resume = node.create_client(Trigger, "/arm/resume")

    def position() -> np.ndarray:
        return joint_positions(states[-1], UR_JOINTS)

    def settle(proc: subprocess.Popen[bytes]) -> np.ndarray:
        """Wait until the arm stops moving (< 1 mrad over 0.3 s); return where it is."""
        last = position()
        for _ in range(30):
            spin_until(executor, lambda: False, 0.3, proc)
            now = position()
            if np.max(np.abs(now - last)) < 1e-3:
                return now
            last = now
        return last

    params = {"driver": "sim", "driver_args": yaml_string("{task: lift}"), "rate_hz": "50.0"}
    with node_process("arm_node", params, domain, tmp_path) as proc:
        err = lambda: stderr_of(tmp_path, "arm_node")  # noqa: E731
        assert spin_until(executor, lambda: len(states) >= 5, 60.0, proc), err()
        assert tuple(states[-1].name) == UR_JOINTS
        assert command.get_subscription_count() >= 1 or spin_until(
            executor, lambda: command.get_subscription_count() >= 1, 10.0, proc
        )
        start = settle(proc)
        delta = np.array([0.15, -0.15, 0.15, -0.15, 0.15, -0.15])
        target = start + delta
        order = [3, 0, 5, 1, 4, 2]  # shuffled: the node must map by name
        command.publish(
            trajectory_msg([UR_JOINTS[i] for i in order], target[order][None], [0.5], 0.0)
        )
        reached = spin_until(
            executor, lambda: bool(np.all((position() - start) * np.sign(delta) > 0.1)), 15.0, proc
        )
        moved = position() - start
        assert reached, f"joints moved {moved} for a commanded {delta}\n{err()}"
        here = settle(proc)

        bad = trajectory_msg(
            [("elbow_jiont" if n == "elbow_joint" else n) for n in UR_JOINTS],
            (here - delta)[None],
            [0.5],
            0.0,
        )
        command.publish(bad)
        deadline = time.monotonic() + 15.0
        while "elbow_jiont" not in err() and time.monotonic() < deadline:
            spin_until(executor, lambda: False, 0.2, proc)
        assert "elbow_jiont" in err() and "rejected joint trajectory" in err(), err()
        spin_until(executor, lambda: False, 1.0, proc)
        assert np.max(np.abs(position() - here)) < 0.01, "the arm moved on a rejected trajectory"

        # held: a valid trajectory is ignored too
        assert hold.wait_for_service(timeout_sec=10.0)
        future = hold.call_async(Trigger.Request())
        assert spin_until(executor, future.done, 10.0, proc) and future.result().success
        held = settle(proc)
        command.publish(trajectory_msg(UR_JOINTS, (held - delta)[None], [0.3], 0.0))
        spin_until(executor, lambda: False, 1.0, proc)
        assert np.max(np.abs(position() - held)) < 0.01, "the arm moved while held"

        # resumed: trajectories move it again
        assert resume.wait_for_service(timeout_sec=10.0)
        future = resume.call_async(Trigger.Request())
        assert spin_until(executor, future.done, 10.0, proc) and future.result().success
        command.publish(trajectory_msg(UR_JOINTS, (held - delta)[None], [0.3], 0.0))
        back = spin_until(
            executor, lambda: bool(np.all((held - position()) * np.sign(delta) > 0.1)), 15.0, proc
        )
        assert back, f"joints moved {position() - held} after resume for {-delta}\n{err()}"
