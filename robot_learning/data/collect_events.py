"""Operator events for a recording session: terminal keys, device buttons, injected scripts.

Why a protocol: the loop must not care whether "discard" came from the keyboard beside a
SpaceMouse, a button on the device, or a test; every source answers ``poll()`` without blocking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from drivers.interfaces import TeleopEvent
from drivers.teleop.session_keys import event_for_key


class _Position(Protocol):
    """Where the session is: a :class:`~robot_learning.data.collect_state.SessionStats`."""

    attempt: int
    step: int


class _KeySource(Protocol):
    """:class:`drivers.teleop.terminal.TerminalKeys` (or anything with the same ``poll``)."""

    def poll(self) -> list[str]: ...


class EventSource(Protocol):
    """Anything that yields operator events without blocking (terminal keys, a test script)."""

    def poll(self) -> list[TeleopEvent]: ...


class KeyEvents:
    """Session keys (s/d/r/q) read from a :class:`drivers.teleop.terminal.TerminalKeys`."""

    def __init__(self, keys: _KeySource) -> None:
        self._keys = keys

    def poll(self) -> list[TeleopEvent]:
        events = [event_for_key(k) for k in self._keys.poll()]
        return [e for e in events if e is not None]


class ScriptedEvents:
    """Events injected at ``(attempt, step)``: lets tests and automation press keys exactly.

    ``attempt`` counts episode attempts from 0 (saved, discarded and re-recorded ones); ``step``
    is the number of steps already recorded in it. Bind to a session's stats with :meth:`bind`.
    """

    def __init__(self, schedule: Mapping[tuple[int, int], TeleopEvent]) -> None:
        self.schedule = dict(schedule)
        self._stats: _Position | None = None

    def bind(self, stats: _Position) -> ScriptedEvents:
        self._stats = stats
        return self

    def poll(self) -> list[TeleopEvent]:
        if self._stats is None:
            raise RuntimeError("ScriptedEvents.poll() before bind(session.stats)")
        event = self.schedule.pop((self._stats.attempt, self._stats.step), None)
        return [] if event is None else [event]


__all__ = ["EventSource", "KeyEvents", "ScriptedEvents"]
