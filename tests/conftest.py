"""Shared test set-up: headless rendering before MuJoCo is imported."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
