"""The Fast DDS transport set-up every robot_learning ROS 2 process shares.

Fast DDS's default shared-memory segment (512 KB) is smaller than one 640x480 RGB frame, so
images fall back to fragmented best-effort UDP and, on a loaded machine, two frames in three
were lost. Fast DDS's ``LARGE_DATA`` builtin mode carries them whole but, with the Fast DDS 3.2
wheels, left about one start in five with a pair of processes that never matched. The packaged
profile keeps Fast DDS's own discovery and transports and only enlarges the shared-memory
segment (BENCHMARKS.md, "ROS 2 loop"). Fast DDS reads it once per process, before the first
participant, so each node calls :func:`use_robot_learning_transports` before ``rclpy.init``.
Kept free of rclpy imports so test and tool set-up can call it before rclpy is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILE = Path(__file__).with_name("fastdds_profile.xml")
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
# any of these set by the user means the user chose the transports: leave them alone
USER_CHOICE_ENVS = (PROFILE_ENV, "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def use_robot_learning_transports(env: dict[str, str] | None = None) -> dict[str, str]:
    """Point Fast DDS at the packaged profile in ``env`` (default: this process's environment)
    unless the user already chose transports; returns the variables now in effect."""
    target = os.environ if env is None else env
    if not any(target.get(name) for name in USER_CHOICE_ENVS):
        target[PROFILE_ENV] = str(PROFILE)
    return {name: target[name] for name in USER_CHOICE_ENVS if target.get(name)}
