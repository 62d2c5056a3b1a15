"""Shared test set-up: headless rendering before MuJoCo is imported, and the Fast DDS transports
every ROS 2 node uses (``robot_learning_ros.node_utils.use_large_data_transport``): Fast DDS reads
them once per process, so they are set before any test creates a participant."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
