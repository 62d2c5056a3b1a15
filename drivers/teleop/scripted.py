"""``ScriptedTeleop``: a sim scripted expert presented as a teleoperation device.

Why: automated demonstrations go through exactly the same collection loop as a human with a
SpaceMouse (``--teleop scripted`` vs ``--teleop spacemouse``). The expert reads the simulator's
privileged state (object poses), so it can only drive a :class:`~drivers.robots.sim.SimRobot`.
"""

from __future__ import annotations

import logging

import numpy as np

from drivers.interfaces import Robot, TeleopDevice
from drivers.robots.sim import SimRobot
from robot_learning.sim.experts import ExpertConfig, ScriptedExpert, expert_action, make_expert
from robot_learning.sim.experts.lift import LIFT, PickExpert
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)
MISS_DISTANCE = (0.025, 0.04)  # m beside the object that a deliberate miss aims
PRE_ROLL_STEPS = 80  # cap on the unrecorded steps of a deliberate miss


class ScriptedTeleop(TeleopDevice):
    """Produces the task expert's actions in the robot's action spec (its control mode).

    ``noise_std`` is a fraction of the per-step action bound added as Gaussian noise (diverse
    demonstrations); ``seed`` seeds that noise, and ``reset(seed)`` re-seeds it per episode.

    ``recovery_prob`` is the chance per episode that, before recording starts, the expert closes
    a grasp 2.5-4 cm beside the object (pick tasks). The recorded episode then starts from that
    failed grasp and shows the expert noticing it, opening and picking again: recovery data a
    policy that imitates a never-failing expert would otherwise never see. The deliberate miss
    itself is not recorded, so no demonstration teaches aiming beside the object.
    """

    def __init__(
        self, robot: Robot, noise_std: float = 0.0, seed: int = 0, recovery_prob: float = 0.0
    ) -> None:
        super().__init__()
        if not isinstance(robot, SimRobot):
            raise TypeError(
                "the scripted teleop reads privileged simulator state, so it only drives sim "
                f"robots (--robot sim:<task>); got {robot.device_name}"
            )
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if not 0.0 <= recovery_prob <= 1.0:
            raise ValueError(f"recovery_prob must be in [0, 1], got {recovery_prob}")
        self.robot = robot
        self.recovery_prob = recovery_prob
        self.started_after_miss = False
        self.config = ExpertConfig(noise_std=noise_std, seed=seed)
        self._expert: ScriptedExpert | None = None

    @property
    def device_name(self) -> str:
        return f"ScriptedTeleop(sim:{self.robot.task})"

    def _connect(self) -> None:
        self._expert = make_expert(self.robot.task, self.config)
        if self.recovery_prob > 0 and not isinstance(self._expert, PickExpert):
            self._expert = None
            raise ValueError(
                f"recovery_prob needs a pick task (lift, pick_language); {self.robot.task!r} "
                "has no grasp to miss"
            )

    def _disconnect(self) -> None:
        self._expert = None

    @property
    def expert(self) -> ScriptedExpert:
        self.require_connected("expert")
        assert self._expert is not None
        return self._expert

    def action_spec(self) -> SpecDict:
        return self.robot.action_spec()

    def reset(self, seed: int | None = None) -> None:
        """Restart the expert's phase machine; ``seed`` re-seeds its action noise.

        With ``recovery_prob``, this may also run the unrecorded deliberate miss, so the robot
        is moved: read a fresh observation after it.
        """
        expert = self.expert
        expert.reset(seed=seed)
        rng = np.random.default_rng(None if seed is None else [seed, 0x5EC0])
        self.started_after_miss = bool(rng.random() < self.recovery_prob)
        if self.started_after_miss:
            assert isinstance(expert, PickExpert)
            angle = rng.uniform(-np.pi, np.pi)
            expert.aim_off(rng.uniform(*MISS_DISTANCE) * np.array([np.cos(angle), np.sin(angle)]))
            self._pre_roll_miss(expert)

    def _pre_roll_miss(self, expert: PickExpert) -> None:
        """Step the expert until its off-target grasp has closed (unrecorded)."""
        for _ in range(PRE_ROLL_STEPS):
            if expert.phase >= LIFT or self.robot.done:
                break
            values = expert_action(self.robot.env, expert)
            self.robot.send_action(Action(values={"action": values}, t_exec=self.robot.sim_time))
        expert.memory.pop("aim_offset", None)  # the retry aims at the object
        LOG.debug("%s: recording starts after a deliberate miss", self.device_name)

    def get_action(self, observation: Observation) -> Action:
        """The expert's next action. ``observation`` is unused: the expert reads sim state."""
        expert = self.expert
        values = expert_action(self.robot.env, expert)
        return Action(
            values={"action": values},
            t_exec=self.robot.sim_time,
            info={"expert_phase": expert.phase},
        )
