"""Teleoperation devices: the scripted sim expert here; hardware devices register lazily."""

from drivers.teleop.scripted import ScriptedTeleop

__all__ = ["ScriptedTeleop"]
