"""Keyboard teleop: steer the tool from the terminal, one key press per small step.

Why: it needs no hardware at all, so anyone can record a demonstration (in sim) from an SSH
session. Keys (lower case moves, upper case rotates about the same axis):

    i / k   +x / -x  (forward / back)        I / K   +rx / -rx  (roll)
    j / l   +y / -y  (left / right)          J / L   +ry / -ry  (pitch)
    u / o   +z / -z  (up / down)             U / O   +rz / -rz  (yaw)
    space   toggle the gripper (open <-> closed)
    + / -   faster / slower (``=`` and ``_`` work too)

plus the session keys of :mod:`drivers.teleop.session_keys` (save, discard, re-record, stop),
reported by :meth:`KeyboardTeleop.events`. Each press moves ``speed`` x the robot's per-step
bound for one control step; holding a key repeats it at the terminal's key-repeat rate.
This device reads the terminal itself: do not poll a second :class:`TerminalKeys` beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from drivers.interfaces import Robot, TeleopEvent
from drivers.teleop.mapping import EeDeltaTeleop, MappedInput, adjust_speed
from drivers.teleop.session_keys import SESSION_KEYS, event_for_key, session_key_help
from drivers.teleop.terminal import TerminalKeys
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)

# key -> (index into dx, dy, dz, drx, dry, drz, direction)
MOTION_KEYS: dict[str, tuple[int, float]] = {
    "i": (0, 1.0),
    "k": (0, -1.0),
    "j": (1, 1.0),
    "l": (1, -1.0),
    "u": (2, 1.0),
    "o": (2, -1.0),
    "I": (3, 1.0),
    "K": (3, -1.0),
    "J": (4, 1.0),
    "L": (4, -1.0),
    "U": (5, 1.0),
    "O": (5, -1.0),
}
GRIPPER_KEYS = frozenset({" "})
FASTER_KEYS = frozenset({"+", "="})
SLOWER_KEYS = frozenset({"-", "_"})

_clash = {k for k in (*MOTION_KEYS, *GRIPPER_KEYS, *FASTER_KEYS, *SLOWER_KEYS)} & {
    variant for key in SESSION_KEYS for variant in (key, key.upper())
}
if _clash:  # session keys are matched case-insensitively: a clash would save mid-motion
    raise RuntimeError(f"keyboard teleop keys {sorted(_clash)} clash with the session keys")


def keyboard_help() -> str:
    """The key layout, for the collection CLI's status line."""
    return (
        "i/k j/l u/o: move x/y/z  I/K J/L U/O: rotate about x/y/z  space: gripper  "
        f"+/-: speed  {session_key_help()}"
    )


def map_keys(keys: Iterable[str], gripper: float, speed: float) -> MappedInput:
    """Keys pressed during one control step -> one step (pure; each press adds one unit)."""
    command = np.zeros(6)
    events: set[TeleopEvent] = set()
    for key in keys:
        if key in MOTION_KEYS:
            axis, direction = MOTION_KEYS[key]
            command[axis] += direction
        elif key in GRIPPER_KEYS:
            gripper = 0.0 if gripper >= 0.5 else 1.0
        elif key in FASTER_KEYS or key in SLOWER_KEYS:
            speed = adjust_speed(speed, faster=key in FASTER_KEYS)
        elif (event := event_for_key(key)) is not None:
            events.add(event)
        else:
            LOG.debug("unbound key %r", key)
    return MappedInput(command, gripper, speed, frozenset(events))


class KeyboardTeleop(EeDeltaTeleop):
    """Tool deltas from terminal keys (see the module docstring for the layout).

    ``stream``: where keys come from (default standard input; a pipe or pty fd in tests).
    ``speed``: fraction of the robot's per-step bound that one key press moves.
    """

    uses_terminal = True  # the collection CLI must not read session keys from the tty too

    def __init__(
        self,
        robot: Robot | None = None,
        *,
        stream: int | IO[Any] | None = None,
        speed: float = 0.2,
        action_spec: SpecDict | None = None,
    ) -> None:
        super().__init__(robot, action_spec=action_spec, speed=speed)
        self._keys = TerminalKeys(stream)
        self._held: list[str] = []  # keys read by events() that get_action has not used yet

    def _open(self) -> None:
        self._keys.open()
        LOG.info("keyboard teleop: %s", keyboard_help())

    def _close(self) -> None:
        self._keys.close()
        self._held = []

    def _pump(self) -> None:
        """Read the terminal: session keys become events now, the rest waits for get_action."""
        was_open = not self._keys.eof
        keys = self._keys.poll()
        if was_open and self._keys.eof:
            LOG.warning("keyboard teleop: input closed (end of file); no more keys will arrive")
        for key in keys:
            event = event_for_key(key) if key not in MOTION_KEYS else None
            if event is not None:
                self._events.add(event)
            else:
                self._held.append(key)

    def _read(self) -> MappedInput:
        self._pump()
        keys, self._held = self._held, []
        return map_keys(keys, self.gripper, self.speed)

    def events(self) -> set[TeleopEvent]:
        if self.is_connected:
            self._pump()
        return super().events()

    def reset(self, seed: int | None = None) -> None:
        """Drop motion keys typed between episodes and open the gripper."""
        super().reset(seed)
        self._pump()
        self._held = []


__all__ = ["MOTION_KEYS", "KeyboardTeleop", "keyboard_help", "map_keys"]
