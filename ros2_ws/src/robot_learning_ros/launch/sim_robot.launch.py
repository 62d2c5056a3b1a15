"""The whole closed loop in simulation: policy server + MuJoCo sim node + policy client node.

    ros2 launch robot_learning_ros sim_robot.launch.py policy:=/path/to/checkpoint

Without ``ros2 launch``: ``robot-learning bringup ros2_ws/src/robot_learning_ros/bringup/
sim_robot.yaml --arg policy=DIR`` starts the same processes with the same parameters.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(
        get_package_share_directory("robot_learning_ros"), "config", "sim_robot.yaml"
    )
    policy = LaunchConfiguration("policy")
    port = LaunchConfiguration("port")
    return LaunchDescription(
        [
            DeclareLaunchArgument("policy", default_value="policies/runs/lift_state"),
            DeclareLaunchArgument("port", default_value="8765"),
            DeclareLaunchArgument("task", default_value="lift"),
            DeclareLaunchArgument("variant", default_value="default"),
            DeclareLaunchArgument("seed", default_value="0"),
            DeclareLaunchArgument("execution", default_value="rtc"),
            DeclareLaunchArgument("cameras", default_value="['']"),
            DeclareLaunchArgument("image_size", default_value="[96,96]"),
            ExecuteProcess(
                name="policy_server",
                cmd=["robot-learning", "serve", "--policy", policy, "--port", port],
            ),
            Node(
                package="robot_learning_ros",
                executable="sim_node",
                name="sim",
                parameters=[
                    params,
                    {
                        "task": LaunchConfiguration("task"),
                        "variant": LaunchConfiguration("variant"),
                        "seed": LaunchConfiguration("seed"),
                        "cameras": LaunchConfiguration("cameras"),
                        "image_size": LaunchConfiguration("image_size"),
                    },
                ],
            ),
            Node(
                package="robot_learning_ros",
                executable="policy_client_node",
                name="policy_client",
                parameters=[
                    params,
                    {
                        "server_url": ["ws://127.0.0.1:", port],
                        "execution": LaunchConfiguration("execution"),
                    },
                ],
            ),
        ]
    )
