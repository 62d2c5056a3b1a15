"""Shared test set-up: headless rendering before MuJoCo is imported, and the Fast DDS transports
every ROS 2 node uses (``robot_learning_ros.dds_profile``): Fast DDS reads them once per process,
so they are set before any test creates a participant; child processes inherit them."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "robot_learning_ros")
)
from robot_learning_ros.dds_profile import use_robot_learning_transports

use_robot_learning_transports()


# ---- process exit -------------------------------------------------------------------------------
# With librealsense and Fast DDS both loaded in one pytest process, the interpreter can crash in
# native static destructors *after* every test has passed and the summary is printed (each set
# alone exits cleanly). Once pytest is done, leave without running them, keeping the exit status.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
    import sys

    if _EXIT_STATUS and "rclpy" in sys.modules and "pyrealsense2" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
