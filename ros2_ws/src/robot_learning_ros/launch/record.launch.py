"""Teleoperated recording through ROS 2: the sim node and the recorder node (on a real cell,
the arm, camera and tactile nodes take the sim node's place).

    ros2 launch robot_learning_ros record.launch.py store:=data/ros_demos

Start and end episodes with ``ros2 service call /recorder/start std_srvs/srv/Trigger`` and
``/recorder/stop std_srvs/srv/SetBool "{data: true}"`` (true = success). Without ``ros2
launch``: ``robot-learning bringup ros2_ws/src/robot_learning_ros/bringup/record.yaml``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(
        get_package_share_directory("robot_learning_ros"), "config", "record.yaml"
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("store", default_value="data/ros_demos"),
            Node(
                package="robot_learning_ros",
                executable="sim_node",
                name="sim",
                parameters=[params],
            ),
            Node(
                package="robot_learning_ros",
                executable="recorder_node",
                name="recorder",
                parameters=[params, {"store": LaunchConfiguration("store")}],
            ),
        ]
    )
