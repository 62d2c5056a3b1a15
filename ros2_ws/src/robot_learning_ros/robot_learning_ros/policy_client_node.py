"""Policy client node: topics -> policy server -> chunk executor -> safety layer -> JointTrajectory.

The learning-side loop is :class:`~robot_learning.serving.control_loop.PolicyControlLoop`, the
same one the CLI runs on a robot; this node only adapts it to ROS 2. Each control tick is paced
by the trigger topic (``/joint_states``): the observation is assembled from the latest message
on every configured topic (:mod:`topic_observations`), the action for the tick comes from the
chunk executor (chunks requested from the server in the background), passes the safety layer
(hold on e-stop, operator hold, a lost server or a stale stream), and is sent as a one-point
``JointTrajectory`` stamped with the observation it was computed from. tcp-delta actions are
turned into joint targets by the simulator's own controller (:mod:`joint_commands`).

Services (``std_srvs/Trigger``): ``~/estop`` (latched: every tick sends the safety layer's hold),
``~/hold`` (pause: no commands at all, the arm's controller keeps its last target), ``~/resume``
(clears hold and e-stop), ``~/reset`` (new episode from the first observation made after the call:
fresh window, executor and safety state; clears a hold, not an e-stop). Between episodes, hold
the client before resetting the robot, so no command computed for the old episode reaches the
new one.
Diagnostics go to ``/diagnostics`` once a second.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from drivers.interfaces import Robot
from robot_learning.serving.client import PolicyClient
from robot_learning.serving.control_loop import PolicyControlLoop
from robot_learning.serving.executor import ChunkExecutor, ExecutorConfig
from robot_learning.serving.joint_commands import JointCommandMapper
from robot_learning.serving.runner import AsyncChunkRunner
from robot_learning.serving.safety import SafetyLayer
from robot_learning.serving.safety_config import SafetyConfig
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation
from robot_learning_ros import topics
from robot_learning_ros.conversions import trajectory_msg
from robot_learning_ros.node_utils import declare, run_node
from robot_learning_ros.qos import COMMAND_QOS
from robot_learning_ros.topic_observations import TopicObservations

ARM_JOINTS_DEFAULT = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
]


class TopicRobot(Robot):
    """The robot as the policy loop sees it: observations from topics, actions to a publisher."""

    def __init__(self, node: PolicyClientNode) -> None:
        super().__init__()
        self.node = node
        self.last_stamp = -1.0
        self.wait_s = 2.0 * node.period

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def observation_spec(self) -> SpecDict:
        return self.node.obs_spec

    def action_spec(self) -> SpecDict:
        return self.node.action_spec

    def get_observation(self) -> Observation:
        """The next synchronised observation (waits up to two periods for the trigger topic)."""
        obs = self.node.observations
        obs.wait_newer(
            self.last_stamp,
            self.wait_s,
            tolerance_s=0.5 * self.node.period,
            sync_wait_s=0.5 * self.node.period,
        )
        values, stamps, trigger = obs.snapshot()
        self.last_stamp = max(self.last_stamp, trigger)
        return Observation(values=values, timestamps=stamps)

    def reset(self, seed: int | None = None) -> Observation:
        self.last_stamp = self.node.now()  # only observations made after the reset count
        while not self.node.observations.wait_newer(self.last_stamp, 1.0):
            if self.node.stopping.is_set():
                break
        obs = self.get_observation()
        joints = self.node.observations.arm_joint_pos
        if joints is not None:
            self.node.mapper.reset(joints)
        return obs

    def send_action(self, action: Action) -> Action:
        self.node.publish_command(np.asarray(action.values["action"]), self.last_stamp)
        return action


class PolicyClientNode(Node):
    def __init__(self) -> None:
        super().__init__("policy_client")
        p = declare(
            self,
            server_url="ws://127.0.0.1:8765",
            token_file="",
            policy="",
            execution="rtc",
            control_hz=0.0,
            arm_joints=ARM_JOINTS_DEFAULT,
            controller=topics.DEFAULT_CONTROLLER,
            trigger_topic=topics.JOINT_STATES,
            topic_overrides=[""],
            camera_namespace="camera",
            safety_config="",
            stale_after_periods=3.0,
            server_timeout_s=1.0,
            autostart=True,
        )
        token = Path(p["token_file"]).read_text().strip() if p["token_file"] else None
        self.client = PolicyClient(str(p["server_url"]), token=token, policy=p["policy"] or None)
        meta = self.client.connect()
        info = self.client.policy_info()
        self.obs_spec = SpecDict.from_json(info["observation_spec"])
        self.action_spec = SpecDict.from_json(info["action_spec"])
        hz = float(p["control_hz"]) or float(info["control_hz"])
        self.period = 1.0 / hz
        names = tuple(self.action_spec["action"].names or ())
        mode = "ee_delta" if names[:1] == ("dx",) else "joint"
        self.mapper = JointCommandMapper(mode)  # type: ignore[arg-type]
        self.arm_joints = list(p["arm_joints"])
        overrides = dict(o.split("=", 1) for o in p["topic_overrides"] if o)
        self.observations = TopicObservations(
            self,
            self.obs_spec,
            self.arm_joints,
            overrides,
            trigger_topic=str(p["trigger_topic"]),
            camera_namespace=str(p["camera_namespace"]),
        )
        self.pub_command = self.create_publisher(
            JointTrajectory, topics.trajectory_topic(str(p["controller"])), COMMAND_QOS
        )
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        safety = self._safety_config(
            str(p["safety_config"]), mode, hz, float(p["stale_after_periods"])
        )
        self.safety = SafetyLayer(safety)
        executor = ChunkExecutor(
            ExecutorConfig(
                self.period,
                int(info["chunk_len"]),
                int(info["n_action_steps"]),
                mode=p["execution"],
            )
        )
        self.runner = AsyncChunkRunner(
            executor,
            lambda obs, prefix: self.client.infer(obs, prefix=prefix).actions,
            server_timeout_s=float(p["server_timeout_s"]),
            connected=lambda: self.client.connected,
        )
        self.robot = TopicRobot(self)
        self.loop = PolicyControlLoop(
            self.robot,
            self.runner,
            self.safety,
            self.obs_spec,
            int(info["n_obs_steps"]),
            robot_time=self.now,
        )
        self.server_timeout_s = float(p["server_timeout_s"])
        self.held = False
        self.commands_sent = 0
        self.stopping = threading.Event()
        self._reset_requested = threading.Event()
        self._running = threading.Event()
        if p["autostart"]:
            self._reset_requested.set()
            self._running.set()
        for name, handler in (
            ("~/estop", self._on_estop),
            ("~/hold", self._on_hold),
            ("~/resume", self._on_resume),
            ("~/reset", self._on_reset),
        ):
            self.create_service(Trigger, name, handler)
        self.create_timer(1.0, self._publish_diagnostics)
        self._thread = threading.Thread(target=self._control, name="policy-control", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"policy {meta.get('default_policy')!r} from {p['server_url']}: {hz:g} Hz, "
            f"{mode} actions, {len(self.obs_spec)} features, execution {p['execution']}"
        )

    def _safety_config(self, path: str, mode: str, hz: float, stale_periods: float) -> SafetyConfig:
        config = SafetyConfig.from_yaml(path) if path else SafetyConfig.for_sim(mode, hz)  # type: ignore[arg-type]
        if not config.stale_obs_max_age_s:
            # sensor streams must be fresh; an instruction holds until a new one is published
            ages = {
                name: stale_periods / hz
                for name, spec in self.obs_spec.items()
                if spec.kind != "language"
            }
            config = replace(config, stale_obs_max_age_s=ages)
        return config

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- control thread ------------------------------------------------------------------------
    def _control(self) -> None:
        while not self.stopping.is_set():
            if not self._running.wait(timeout=0.1):
                continue
            if self._reset_requested.is_set():
                self._reset_requested.clear()
                self.loop.reset()
                self.loop.prime(self.server_timeout_s)
                continue
            self.loop.step(hold=self.held)

    def publish_command(self, action: np.ndarray, stamp: float) -> None:
        if self.held and not self.safety.estopped:
            return  # paused: the arm's controller keeps its last target
        joints = self.observations.arm_joint_pos
        if joints is None:
            self.get_logger().warning("no joint states yet: command not sent")
            return
        targets = self.mapper.to_joint_targets(action, joints)
        names = [*self.arm_joints, topics.GRIPPER_JOINT]
        self.pub_command.publish(trajectory_msg(names, targets[None], [self.period], stamp))
        self.commands_sent += 1

    # ---- services ------------------------------------------------------------------------------
    def _on_estop(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.safety.estop("e-stop service")
        self.get_logger().warning("E-STOP latched: holding until ~/resume")
        res.success, res.message = True, "e-stop latched"
        return res

    def _on_hold(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.held = True
        res.success, res.message = True, "holding"
        return res

    def _on_resume(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.safety.reset_estop()
        self.held = False
        self._running.set()
        res.success, res.message = True, "resumed"
        return res

    def _on_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.held = False
        self._reset_requested.set()
        self._running.set()
        res.success, res.message = True, "episode reset requested"
        return res

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name="policy_client", hardware_id="policy_server")
        estop = self.safety.estopped
        ok = self.runner.server_ok
        status.level = (
            DiagnosticStatus.ERROR
            if estop or not ok
            else (DiagnosticStatus.WARN if self.held else DiagnosticStatus.OK)
        )
        status.message = (
            "e-stop"
            if estop
            else "server lost"
            if not ok
            else "holding"
            if self.held
            else "running"
        )
        fields: dict[str, Any] = {
            "ticks": self.loop.tick,
            "commands_sent": self.commands_sent,
            "server_ok": ok,
            "rejected_messages": sum(self.observations.rejected.values()),
            **{f"safety_{k}": v for k, v in self.safety.counts.items()},
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in fields.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def shutdown(self) -> None:
        self.stopping.set()
        self._running.set()
        self._thread.join(timeout=3.0)
        self.runner.close()
        self.client.close()


def main(args: list[str] | None = None) -> None:
    run_node(PolicyClientNode, args)


if __name__ == "__main__":
    main()
