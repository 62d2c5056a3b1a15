"""ament_python package: the robot_learning ROS 2 nodes, launch files and parameters.

The console scripts below are the executables ``ros2 run robot_learning_ros <name>`` starts;
``robot-learning bringup`` reads this same table to start them without ``ros2 launch``.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "robot_learning_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["fastdds_profile.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/bringup", glob("bringup/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_learning maintainers",
    maintainer_email="maintainers@robot-learning.dev",
    description="ROS 2 nodes, launch files and parameters for robot_learning",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = robot_learning_ros.sim_node:main",
            "policy_client_node = robot_learning_ros.policy_client_node:main",
            "recorder_node = robot_learning_ros.recorder_node:main",
            "camera_node = robot_learning_ros.camera_node:main",
            "arm_node = robot_learning_ros.arm_node:main",
            "tactile_node = robot_learning_ros.tactile_node:main",
            "teleop_node = robot_learning_ros.teleop_node:main",
            "episode_runner = robot_learning_ros.episode_runner:main",
        ],
    },
)
