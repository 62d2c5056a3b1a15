"""The MuJoCo robot as a ROS 2 node publishing exactly the topics the hardware nodes publish.

Publishes ``/joint_states`` (six UR joints by name plus ``gripper`` closure 0..1, with
velocities), ``/tcp_pose``, realsense-ros style ``/camera/<cam>/color/image_raw`` +
``camera_info`` for each configured camera, ``/tactile/<left|right>`` taxel grids (``32FC3``
images: normal + two shear forces), the privileged task state (``/sim/state/object_pos`` ...,
``1 x N`` ``32FC1`` arrays) for state-based policies, and ``/sim/episode`` (JSON status).
It executes ``trajectory_msgs/JointTrajectory`` commands from ``/<controller>/joint_trajectory``
in joint mode, as a ros2_control ``joint_trajectory_controller`` would.

Stepping is real time at ``control_hz``. With ``sync_commands`` (default) each tick waits up to
``command_timeout_s`` for the command computed from the observation it just published (the client
stamps commands with that observation's stamp), so the closed loop is the same as the evaluator's
and a slow client only costs holds. After ``~/reset`` the sim waits for the policy's first
command before simulating; commands stamped before the reset are dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from drivers.robots.sim import SimRobot
from robot_learning.sim.robot_model import ARM_JOINTS, SCENE_CAMERA
from robot_learning.types import Action
from robot_learning_ros import topics
from robot_learning_ros.conversions import (
    MessageError,
    camera_info_msg,
    from_stamp,
    image_msg,
    joint_state_msg,
    pose_msg,
    trajectory_points,
)
from robot_learning_ros.node_utils import declare, run_node
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS

LOG = logging.getLogger(__name__)
JOINTS = (*ARM_JOINTS, topics.GRIPPER_JOINT)
WRIST_FOVY_DEG = 70.0


class SimNode(Node):
    """Owns one :class:`SimRobot` in joint mode and a stepping thread."""

    def __init__(self) -> None:
        super().__init__("sim")
        p = declare(
            self,
            task="lift",
            variant="default",
            control_hz=10.0,
            cameras=[""],
            image_size=[96, 96],
            tactile=False,
            seed=0,
            max_episode_steps=0,
            sync_commands=True,
            command_timeout_s=0.0,
            controller=topics.DEFAULT_CONTROLLER,
            camera_namespace="camera",
            publish_sim_state=True,
        )
        self.period = 1.0 / float(p["control_hz"])
        self.sync = bool(p["sync_commands"])
        # 0: wait up to 90% of a period for the command of the observation just published
        self.command_timeout = float(p["command_timeout_s"]) or 0.9 * self.period
        self.cameras = tuple(c for c in p["cameras"] if c)
        self.seed = int(p["seed"])
        self.resets = 0
        self.robot = SimRobot(
            task=str(p["task"]),
            control_mode="joint",
            control_hz=float(p["control_hz"]),
            cameras=self.cameras,
            image_size=tuple(int(v) for v in p["image_size"]),
            tactile=bool(p["tactile"]),
            variant=str(p["variant"]),
            max_episode_steps=int(p["max_episode_steps"]) or None,
            seed=self.seed,
        )
        self.pub_status = self.create_publisher(String, topics.EPISODE_STATUS, STATUS_QOS)
        self._lock = threading.Condition()
        self._target: np.ndarray | None = None
        self._target_stamp = -1.0
        self._episode_start = 0.0
        self._awaiting_first = True
        self._last_stamp = 0.0
        self._published = 0.0
        self._reset_seed: int | None = None
        self._reset_done = threading.Event()
        self.rejected = 0
        self.late_commands = 0  # ticks stepped without the command for their observation
        self._status: dict[str, Any] = {}
        self._stop = threading.Event()
        # the renderer's GL context belongs to the thread that creates it: the sim lives in one
        self._ready = threading.Event()
        self._publishers_ready = threading.Event()
        self._error: BaseException | None = None
        self.language: list[str] = []  # language features of the task (set once connected)
        self._instruction: str | None = None
        self.pub_instruction: Any = None
        self._thread = threading.Thread(target=self._run, name="sim-step", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"the sim failed to start: {self._error}") from self._error
        self.publish_state = bool(p["publish_sim_state"])
        ns = str(p["camera_namespace"])
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self.pub_tcp = self.create_publisher(PoseStamped, topics.TCP_POSE, SENSOR_QOS)
        proprio = {"joint_pos", "joint_vel", "gripper_pos", "ee_pos", "ee_quat"}
        self.pub_state = {
            name: self.create_publisher(Image, topics.sim_state_topic(name), SENSOR_QOS)
            for name, spec in self.robot.observation_spec().items()
            if spec.kind == "lowdim" and name not in proprio
        }
        self.pub_images = {
            cam: (
                self.create_publisher(Image, topics.color_topic(cam, ns), SENSOR_QOS),
                self.create_publisher(CameraInfo, topics.color_info_topic(cam, ns), SENSOR_QOS),
            )
            for cam in self.cameras
        }
        # the task's instruction, as an operator would publish it: latched, once per change
        self.pub_instruction = (
            self.create_publisher(String, topics.INSTRUCTION, STATUS_QOS) if self.language else None
        )
        with self._lock:  # the first episode was reset before this publisher existed
            self._publish_instruction()
        self.pub_tactile = {
            side: self.create_publisher(Image, topics.tactile_topic(side), SENSOR_QOS)
            for side in ("left", "right")
            if p["tactile"]
        }
        self.create_subscription(
            JointTrajectory,
            topics.trajectory_topic(str(p["controller"])),
            self._on_command,
            COMMAND_QOS,
        )
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._publishers_ready.set()
        self.get_logger().info(
            f"sim:{p['task']} ({p['variant']}) at {p['control_hz']} Hz, cameras "
            f"{list(self.cameras) or 'none'}, sync_commands={self.sync}"
        )

    # ---- commands ------------------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory) -> None:
        try:
            positions, _ = trajectory_points(msg, JOINTS)
        except MessageError as exc:
            self.rejected += 1
            self.get_logger().warning(f"rejected joint trajectory: {exc}")
            return
        stamp = from_stamp(msg.header.stamp)
        with self._lock:
            if stamp < self._episode_start:
                return  # computed from an observation of the previous episode
            self._target = positions[0].copy()
            self._target_stamp = stamp
            self._lock.notify_all()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Ask the sim thread for a new episode and wait until it has one."""
        seed = self.seed + self.resets
        self.resets += 1
        with self._lock:
            self._reset_done.clear()
            self._reset_seed = seed
            self._lock.notify_all()
        if not self._reset_done.wait(timeout=30.0):
            response.success, response.message = False, "the sim did not reset within 30 s"
            return response
        response.success = True
        response.message = json.dumps({"seed": seed, "episode": self.resets - 1})
        return response

    def _reset_episode(self, seed: int) -> None:
        self.robot.reset(seed=seed)
        self._target = None
        self._awaiting_first = True
        self._episode_start = self._now() + 1e-6
        self._status = {
            "seed": seed,
            "episode": self.resets - 1,
            "steps": 0,
            "done": False,
            "success": False,
            "late_commands": self.late_commands,
        }
        if self.language:  # what the task asks for, so a runner can log and check it
            self._instruction = str(self.robot.get_observation().values[self.language[0]])
            self._status["instruction"] = self._instruction
            self._publish_instruction()
        self._publish_status()

    def _publish_instruction(self) -> None:
        """The episode's instruction, before its first observation (none before start-up)."""
        if self.pub_instruction is not None and self._instruction is not None:
            self.pub_instruction.publish(String(data=self._instruction))

    # ---- stepping ------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _run(self) -> None:
        try:
            self.robot.connect()
            spec = self.robot.observation_spec()
            self.language = [name for name, f in spec.items() if f.kind == "language"]
            self._reset_episode(self.seed)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._publishers_ready.wait()
        try:
            self._loop()
        finally:
            self.robot.disconnect()

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set() and rclpy.ok():
            with self._lock:
                if self._reset_seed is not None:
                    self._reset_episode(self._reset_seed)
                    self._reset_seed = None
                    self._reset_done.set()
                self._published = self._publish_observation()
                if self.sync or self._awaiting_first:
                    answered = self._lock.wait_for(
                        self._answered,
                        # a new episode waits (up to a second per re-publication) for the
                        # policy's first command, however long its first chunk takes
                        timeout=max(1.0, self.period)
                        if self._awaiting_first
                        else self.command_timeout,
                    )
                    if not answered and not self._awaiting_first:
                        self.late_commands += 1
                        self._status["late_commands"] = self.late_commands
                if self._target is not None:
                    self._awaiting_first = False
                if self._reset_seed is not None:
                    continue
                if not self._awaiting_first and not self.robot.done:
                    self._step(None if self._target is None else self._target.copy())
            next_tick += self.period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()

    def _answered(self) -> bool:
        """The command computed from the last published observation has arrived (or stopping)."""
        return (
            self._target_stamp >= self._published
            or self._stop.is_set()
            or self._reset_seed is not None
        )

    def _step(self, target: np.ndarray | None) -> None:
        obs = self.robot.get_observation().values
        if target is None:  # hold where the arm is
            target = np.concatenate([obs["joint_pos"], np.asarray(obs["gripper_pos"]).reshape(1)])
        executed = self.robot.send_action(Action(values={"action": target.astype(np.float32)}))
        self._status["steps"] = self.robot.episode_steps
        if self.robot.done:
            self._status.update(done=True, success=bool(self.robot.is_success))
            self._status["reward"] = float(executed.info.get("reward", 0.0))
            self._publish_status()

    def _publish_status(self) -> None:
        self.pub_status.publish(String(data=json.dumps(self._status)))

    def _publish_observation(self) -> float:
        """Publish every topic with one stamp (the moment the state was sensed); return it."""
        obs = self.robot.get_observation().values
        t = max(self._now(), self._last_stamp + 1e-6)
        self._last_stamp = t
        self.pub_tcp.publish(pose_msg(obs["ee_pos"], obs["ee_quat"], t))
        if self.publish_state:
            for name, pub in self.pub_state.items():
                value = np.asarray(obs[name], dtype=np.float32).reshape(1, -1)
                pub.publish(image_msg(value, t, encoding="32FC1"))
        for cam, (pub_image, pub_info) in self.pub_images.items():
            frame = np.asarray(obs[f"{cam}_rgb"])
            pub_image.publish(image_msg(frame, t, frame_id=f"{cam}_color_optical_frame"))
            fovy = SCENE_CAMERA.fovy if cam == "scene" else WRIST_FOVY_DEG
            pub_info.publish(
                camera_info_msg(
                    frame.shape[0], frame.shape[1], fovy, t, f"{cam}_color_optical_frame"
                )
            )
        for side, pub in self.pub_tactile.items():
            grid = np.asarray(obs[f"tactile_{side}"], dtype=np.float32)
            pub.publish(image_msg(grid, t))  # (rows, cols[, 3]) forces: 32FC1 or 32FC3
        # joint states last: the client's tick starts on them, the other topics are on their way
        joints = np.concatenate([obs["joint_pos"], np.asarray(obs["gripper_pos"]).reshape(1)])
        velocity = obs.get("joint_vel")
        self.pub_joints.publish(
            joint_state_msg(
                JOINTS,
                joints,
                t,
                None if velocity is None else np.concatenate([velocity, [0.0]]),
            )
        )
        return t

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._publishers_ready.set()
        self._thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> None:
    run_node(SimNode, args)


if __name__ == "__main__":
    main()
