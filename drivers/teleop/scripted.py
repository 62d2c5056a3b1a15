"""``ScriptedTeleop``: a sim scripted expert presented as a teleoperation device.

Why: automated demonstrations go through exactly the same collection loop as a human with a
SpaceMouse (``--teleop scripted`` vs ``--teleop spacemouse``). The expert reads the simulator's
privileged state (object poses), so it can only drive a :class:`~drivers.robots.sim.SimRobot`.
"""

from __future__ import annotations

from drivers.interfaces import Robot, TeleopDevice
from drivers.robots.sim import SimRobot
from robot_learning.sim.experts import ExpertConfig, ScriptedExpert, expert_action, make_expert
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation


class ScriptedTeleop(TeleopDevice):
    """Produces the task expert's actions in the robot's action spec (its control mode).

    ``noise_std`` is a fraction of the per-step action bound added as Gaussian noise (diverse
    demonstrations); ``seed`` seeds that noise, and ``reset(seed)`` re-seeds it per episode.
    """

    def __init__(self, robot: Robot, noise_std: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(robot, SimRobot):
            raise TypeError(
                "the scripted teleop reads privileged simulator state, so it only drives sim "
                f"robots (--robot sim:<task>); got {robot.device_name}"
            )
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.robot = robot
        self.config = ExpertConfig(noise_std=noise_std, seed=seed)
        self._expert: ScriptedExpert | None = None

    @property
    def device_name(self) -> str:
        return f"ScriptedTeleop(sim:{self.robot.task})"

    def _connect(self) -> None:
        self._expert = make_expert(self.robot.task, self.config)

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
        """Restart the expert's phase machine; ``seed`` re-seeds its action noise."""
        self.expert.reset(seed=seed)

    def get_action(self, observation: Observation) -> Action:
        """The expert's next action. ``observation`` is unused: the expert reads sim state."""
        expert = self.expert
        values = expert_action(self.robot.env, expert)
        return Action(
            values={"action": values},
            t_exec=self.robot.sim_time,
            info={"expert_phase": expert.phase},
        )
