"""A lab cell: RealSense + GelSight Mini + policy client commanding a UR through ros2_control.

    ros2 launch robot_learning_ros lab_robot.launch.py server_url:=ws://gpu-server.local:8765

The UR runs Universal Robots' ``ur_robot_driver`` (ros2_control); the policy client publishes
``trajectory_msgs/JointTrajectory`` to its ``scaled_joint_trajectory_controller`` and reads
``/joint_states`` and ``/tcp_pose``. Without ``ros2 launch``: ``robot-learning bringup
ros2_ws/src/robot_learning_ros/bringup/lab_robot.yaml``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(
        get_package_share_directory("robot_learning_ros"), "config", "lab_robot.yaml"
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("server_url", default_value="ws://gpu-server.local:8765"),
            Node(
                package="robot_learning_ros",
                executable="camera_node",
                name="scene_camera",
                parameters=[params],
            ),
            Node(
                package="robot_learning_ros",
                executable="tactile_node",
                name="gelsight",
                parameters=[params],
            ),
            Node(
                package="robot_learning_ros",
                executable="policy_client_node",
                name="policy_client",
                parameters=[params, {"server_url": LaunchConfiguration("server_url")}],
            ),
        ]
    )
