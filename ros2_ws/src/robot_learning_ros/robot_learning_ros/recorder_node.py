"""Recorder node: ROS 2 topics -> Zarr episodes, through the same store the ``collect`` CLI writes.

Each step holds every observation feature (assembled from its topic exactly as the policy client
does, checked against the spec) and the action: the joint targets last commanded on
``/<controller>/joint_trajectory`` (six arm joints by name + gripper), whoever sent them (the
policy client, a teleop node, a leader arm). Steps are taken on the trigger topic
(``/joint_states``), at most ``fps`` a second. A step is recorded only once a command has been
seen in the episode, so idle time before the operator moves is not training data.

The features come from ``spec_file`` (a JSON/YAML mapping ``{observation: {name: spec},
action: {name: spec}}``, the format of a checkpoint's ``config.json`` specs) or, in sim, from
the task (``sim_task``, ``cameras``, ``image_size``, ``tactile``). Services: ``~/start``
(``std_srvs/Trigger``: open an episode), ``~/stop`` (``std_srvs/SetBool``: commit it, ``data``
= success), ``~/discard`` (``std_srvs/Trigger``). ``/diagnostics`` says once a second whether
the recorder could record (every observation topic heard, commands arriving), naming what is
missing, and how many steps the open episode holds. A killed recorder loses only the open
episode: the store repairs itself on the next open.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_learning.data.store import EpisodeStore
from robot_learning.data.writer import EpisodeWriter
from robot_learning.specs import SpecDict
from robot_learning_ros import topics
from robot_learning_ros.conversions import MessageError, trajectory_points
from robot_learning_ros.node_utils import declare, run_node
from robot_learning_ros.qos import COMMAND_QOS
from robot_learning_ros.topic_observations import TopicObservations

ARM_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)


def sim_specs(
    task: str, cameras: tuple[str, ...], image_size: tuple[int, int], tactile: bool
) -> tuple[SpecDict, SpecDict]:
    """Observation and joint-mode action specs of a sim task, as the sim node publishes it."""
    from robot_learning.sim.env import EnvConfig, ManipulationEnv

    env = ManipulationEnv(
        EnvConfig(
            task=task, control_mode="joint", cameras=cameras, image_size=image_size, tactile=tactile
        )
    )
    try:
        return env.observation_spec(), env.action_spec()
    finally:
        env.close()


def file_specs(path: str) -> tuple[SpecDict, SpecDict]:
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping")
    obs = raw.get("observation") or raw.get("observation_spec")
    act = raw.get("action") or raw.get("action_spec")
    if not isinstance(obs, dict) or not isinstance(act, dict):
        raise ValueError(f"{path}: needs 'observation' and 'action' feature mappings")
    return SpecDict.from_json(obs), SpecDict.from_json(act)


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        p = declare(
            self,
            store="data/ros_demos",
            spec_file="",
            sim_task="lift",
            cameras=[""],
            image_size=[96, 96],
            tactile=False,
            fps=10.0,
            task_description="",
            robot="ros2",
            controller=topics.DEFAULT_CONTROLLER,
            trigger_topic=topics.JOINT_STATES,
            camera_namespace="camera",
        )
        if p["spec_file"]:
            self.obs_spec, self.action_spec = file_specs(str(p["spec_file"]))
        else:
            cams = tuple(c for c in p["cameras"] if c)
            size = (int(p["image_size"][0]), int(p["image_size"][1]))
            self.obs_spec, self.action_spec = sim_specs(
                str(p["sim_task"]), cams, size, bool(p["tactile"])
            )
        self.joint_names = (*ARM_JOINTS, topics.GRIPPER_JOINT)
        self.fps = float(p["fps"])
        self.task = str(p["task_description"])
        features = SpecDict({**dict(self.obs_spec.items()), **dict(self.action_spec.items())})
        path = Path(str(p["store"]))
        if (path / "zarr.json").exists():
            self.store = EpisodeStore.open(path, mode="a")
            self.store.features.check_compatible(features, what="recorder features")
        else:
            self.store = EpisodeStore.create(
                path,
                features,
                actions=self.action_spec.names(),
                fps=self.fps,
                robot=str(p["robot"]),
            )
        self.observations = TopicObservations(
            self,
            self.obs_spec,
            ARM_JOINTS,
            {},
            trigger_topic=str(p["trigger_topic"]),
            camera_namespace=str(p["camera_namespace"]),
        )
        self._lock = threading.Lock()
        self._writer: EpisodeWriter | None = None
        self._command: np.ndarray | None = None
        self._last_step = -1e9
        self.rejected_commands = 0
        self.commands_received = 0
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(
            JointTrajectory,
            topics.trajectory_topic(str(p["controller"])),
            self._on_command,
            COMMAND_QOS,
        )
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(SetBool, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._record, name="recorder", daemon=True)
        self._thread.start()
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"recording {len(self.obs_spec)} observation features + {self.action_spec.names()} "
            f"into {path} ({self.store.n_episodes} episodes already) at <= {self.fps:g} Hz"
        )

    # ---- inputs --------------------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory) -> None:
        """The commanded targets; a command without the gripper (a ros2_control arm controller
        owns only the arm joints) keeps the gripper's last command or measured closure."""
        try:
            if topics.GRIPPER_JOINT in msg.joint_names:
                positions, _ = trajectory_points(msg, self.joint_names)
            else:
                arm, _ = trajectory_points(msg, ARM_JOINTS)
                values, _, _ = self.observations.snapshot()
                last = self._command[-1] if self._command is not None else None
                grip = last if last is not None else values.get("gripper_pos", [0.0])[0]
                positions = np.concatenate([arm, np.full((arm.shape[0], 1), float(grip))], axis=1)
        except MessageError as exc:
            self.rejected_commands += 1
            self.get_logger().warning(f"rejected joint trajectory: {exc}")
            return
        with self._lock:
            self._command = positions[0].astype(np.float32)
            self.commands_received += 1

    def _record(self) -> None:
        last = -1.0
        while not self._stop.is_set():
            if not self.observations.wait_newer(
                last, timeout_s=0.5, tolerance_s=0.5 / self.fps, sync_wait_s=0.5 / self.fps
            ):
                continue
            values, stamps, trigger = self.observations.snapshot()
            last = trigger
            with self._lock:
                writer, command = self._writer, self._command
                if (
                    writer is None
                    or command is None
                    or trigger - self._last_step < 0.999 / self.fps
                ):
                    continue
                self._last_step = trigger
                step: dict[str, Any] = {name: values[name] for name in self.obs_spec.names()}
                step[self.action_spec.names()[0]] = command
                times = {name: stamps[name] for name in self.obs_spec.names()}
                times[self.action_spec.names()[0]] = trigger
                try:
                    writer.add_step(step, times)
                except Exception as exc:  # a bad step must not kill the recorder
                    self.get_logger().error(f"step not recorded: {exc}")

    # ---- services ------------------------------------------------------------------------------
    def _on_start(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self._writer is not None:
                res.success, res.message = False, "an episode is already open: stop or discard it"
                return res
            self._writer = self.store.new_episode(task=self.task, source="ros2")
            self._command = None
        res.success, res.message = True, f"recording episode {self.store.n_episodes}"
        return res

    def _on_stop(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            res.success, res.message = False, "no episode is open"
            return res
        if writer.n_steps == 0:
            writer.discard()
            res.success = False
            res.message = f"the episode has no steps ({self._why_idle()}); discarded"
            return res
        index = writer.commit(success=bool(req.data))
        res.success, res.message = True, f"episode {index} committed ({writer.n_steps} steps)"
        self.get_logger().info(res.message)
        return res

    def _on_discard(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            res.success, res.message = False, "no episode is open"
            return res
        writer.discard()
        res.success, res.message = True, "episode discarded"
        return res

    # ---- reporting -----------------------------------------------------------------------------
    def _why_idle(self, missing: list[str] | None = None) -> str:
        """Why no step is being recorded, or "" when steps can be recorded (``missing``: the
        silent features, when the caller has them already)."""
        missing = self.observations.missing() if missing is None else missing
        if missing:
            return "no message yet on " + ", ".join(missing)
        with self._lock:
            if self._command is None:
                return "no command seen since the episode started"
        return ""

    def _publish_diagnostics(self) -> None:
        with self._lock:
            writer, commands = self._writer, self.commands_received
        steps = writer.n_steps if writer is not None else 0
        status = DiagnosticStatus(name="recorder", hardware_id=str(self.store.root))
        missing = self.observations.missing()
        why = self._why_idle(missing)
        if why and (missing or (writer is not None and steps == 0)):
            # topics silent, or an open episode that cannot take a step (no command yet)
            status.level, status.message = DiagnosticStatus.WARN, why
        else:
            status.level = DiagnosticStatus.OK
            status.message = "recording" if writer is not None else "idle"
        fields: dict[str, Any] = {
            "recording": writer is not None,
            "episode_steps": steps,
            "episodes": self.store.n_episodes,
            "commands_received": commands,
            "rejected_commands": self.rejected_commands,
            "rejected_messages": sum(self.observations.rejected.values()),
            "missing": "; ".join(missing),
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in fields.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()
            self.get_logger().warning("shutting down with an open episode: discarded")
        self.store.close()


def main(args: list[str] | None = None) -> None:
    run_node(RecorderNode, args)


if __name__ == "__main__":
    main()
