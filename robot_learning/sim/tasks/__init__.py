"""Task registry: ``make_task("lift")``; unknown names list the valid ones."""

from __future__ import annotations

from typing import Any

from robot_learning.registry import Registry
from robot_learning.sim.tasks.base import Task

TASKS: Registry[Task] = Registry("task")
TASKS.register("lift", "robot_learning.sim.tasks.lift:LiftTask", "pick up a cube and lift it 10 cm")
TASKS.register(
    "push",
    "robot_learning.sim.tasks.push:PushTask",
    "push a puck to a target position on the table",
)
TASKS.register(
    "insert",
    "robot_learning.sim.tasks.insert:InsertTask",
    "insert a square peg into a hole with 2 mm clearance",
)
TASKS.register(
    "pick_language",
    "robot_learning.sim.tasks.pick_language:PickLanguageTask",
    "pick up the cube the instruction names, among several coloured cubes",
)


def make_task(name: str, **kwargs: Any) -> Task:
    return TASKS.make(name, **kwargs)


__all__ = ["TASKS", "Task", "make_task"]
