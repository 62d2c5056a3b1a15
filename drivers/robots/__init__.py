"""Robot backends: the MuJoCo sim robot here; hardware drivers are registered lazily by name."""

from drivers.robots.sim import SimRobot

__all__ = ["SimRobot"]
