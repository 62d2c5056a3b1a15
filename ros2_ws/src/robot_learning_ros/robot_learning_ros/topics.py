"""Topic names shared by the hardware nodes, the sim node and the policy client.

realsense-ros names its colour stream ``/<namespace>/<camera_name>/color/image_raw``; ros2_control
publishes ``/joint_states`` and its ``joint_trajectory_controller`` listens on
``/<controller>/joint_trajectory``. The sim node publishes exactly these, so a policy client
configured for the sim runs unchanged against the lab robot.
"""

from __future__ import annotations

JOINT_STATES = "/joint_states"
TCP_POSE = "/tcp_pose"
EPISODE_STATUS = "/sim/episode"
# the task instruction for language-conditioned policies (std_msgs/String, latched: STATUS_QOS)
INSTRUCTION = "/instruction"
DEFAULT_CONTROLLER = "joint_trajectory_controller"
GRIPPER_JOINT = "gripper"  # closure 0 (open) .. 1 (closed)


def color_topic(camera: str, namespace: str = "camera") -> str:
    return f"/{namespace}/{camera}/color/image_raw"


def color_info_topic(camera: str, namespace: str = "camera") -> str:
    return f"/{namespace}/{camera}/color/camera_info"


def depth_topic(camera: str, namespace: str = "camera") -> str:
    return f"/{namespace}/{camera}/aligned_depth_to_color/image_raw"


def sim_state_topic(feature: str) -> str:
    """Privileged sim state (object, target, hole poses) for state-based policies; no hardware
    node publishes these."""
    return f"/sim/state/{feature}"


def tactile_topic(sensor: str) -> str:
    return f"/tactile/{sensor}"


def trajectory_topic(controller: str = DEFAULT_CONTROLLER) -> str:
    return f"/{controller}/joint_trajectory"
