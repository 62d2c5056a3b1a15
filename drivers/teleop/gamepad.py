"""Gamepad teleop through pygame's joystick API (SDL2): any Xbox / PlayStation-style pad.

Why: a gamepad is cheap, everywhere, and has enough axes for 6-DoF end-effector control. The
default layout (:class:`~drivers.teleop.mapping.GamepadConfig`): left stick moves in the table
plane, right stick moves up/down and yaws, the d-pad rolls and pitches, A toggles the gripper,
LB/RB change speed, Start saves and Back discards the episode. The reading -> action mapping is
:func:`~drivers.teleop.mapping.map_gamepad`, a pure function tested without a pad.

Runs headless: SDL's dummy video driver is used unless ``SDL_VIDEODRIVER`` is set, and pad
events are read without a focused window.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame prints a banner on import
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no window: the event pump needs video init
os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")

import pygame

from drivers.interfaces import DeviceNotConnectedError, Robot
from drivers.teleop.mapping import (
    EeDeltaTeleop,
    GamepadConfig,
    MappedInput,
    map_gamepad,
)
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)

NOT_FOUND_HINT = (
    "is it plugged in (or paired) and readable? On Linux the pad appears as /dev/input/js* and "
    "/dev/input/event*; your user needs read access (the 'input' group)"
)


class GamepadTeleop(EeDeltaTeleop):
    """Tool deltas from a gamepad.

    ``index``: which pad when several are connected. ``speed``: fraction of the robot's per-step
    bound at full stick. ``deadband``: overrides ``config.deadband`` (sticks rarely rest at 0).
    """

    def __init__(
        self,
        robot: Robot | None = None,
        *,
        index: int = 0,
        speed: float = 0.5,
        deadband: float | None = None,
        config: GamepadConfig | None = None,
        action_spec: SpecDict | None = None,
    ) -> None:
        super().__init__(robot, action_spec=action_spec, speed=speed)
        config = config or GamepadConfig()
        if deadband is not None:
            config = GamepadConfig(
                bindings=config.bindings,
                deadband=deadband,
                gripper_button=config.gripper_button,
                gripper_axis=config.gripper_axis,
                slower_button=config.slower_button,
                faster_button=config.faster_button,
                button_events=config.button_events,
            )
        self.config = config
        self.index = index
        self._joystick: pygame.joystick.JoystickType | None = None
        self._buttons: list[int] = []

    def _open(self) -> None:
        pygame.display.init()
        pygame.joystick.init()
        count = pygame.joystick.get_count()
        if self.index >= count:
            self._quit()
            found = (
                "pygame sees no joystick"
                if count == 0
                else f"only {count} pad(s) are connected, index {self.index} was asked for"
            )
            raise DeviceNotConnectedError(f"no gamepad found ({found}); {NOT_FOUND_HINT}")
        joystick = pygame.joystick.Joystick(self.index)
        joystick.init()
        self._joystick = joystick
        if self.config.max_axis >= joystick.get_numaxes():
            LOG.warning(
                "%s has %d axes but the gamepad layout uses axis %d; that input reads as 0",
                joystick.get_name(),
                joystick.get_numaxes(),
                self.config.max_axis,
            )
        pygame.event.pump()
        self._buttons = [int(joystick.get_button(i)) for i in range(joystick.get_numbuttons())]
        LOG.info("gamepad connected: %s", joystick.get_name())

    def _close(self) -> None:
        if self._joystick is not None:
            self._joystick.quit()
            self._joystick = None
        self._quit()

    @staticmethod
    def _quit() -> None:
        pygame.joystick.quit()
        pygame.display.quit()

    def _read(self) -> MappedInput:
        joystick = self._joystick
        assert joystick is not None
        for event in pygame.event.get():
            if (
                event.type == pygame.JOYDEVICEREMOVED
                and event.instance_id == joystick.get_instance_id()
            ):
                raise DeviceNotConnectedError(f"the gamepad {joystick.get_name()!r} was unplugged")
        axes = [joystick.get_axis(i) for i in range(joystick.get_numaxes())]
        buttons = [int(joystick.get_button(i)) for i in range(joystick.get_numbuttons())]
        hats = [joystick.get_hat(i) for i in range(joystick.get_numhats())]
        step = map_gamepad(
            axes, buttons, hats, self._buttons, self.gripper, self.speed, self.config
        )
        self._buttons = buttons
        return step


__all__ = ["GamepadConfig", "GamepadTeleop"]
