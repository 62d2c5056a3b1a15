"""MuJoCo simulation: the UR5e + Robotiq 2F-85 robot, tasks, experts and domain randomization.

Offscreen rendering needs a GL backend chosen before MuJoCo is imported; EGL (Mesa software
rendering works without a GPU) is the default, ``MUJOCO_GL=osmesa`` the fallback.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
