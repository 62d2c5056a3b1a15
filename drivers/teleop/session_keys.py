"""Operator keys that steer a recording session, shared by every teleop device and the CLI.

Why one table: the keyboard teleop, the terminal listener used beside a SpaceMouse or leader
arm, and the collection CLI's on-screen help must agree on which key saves, discards,
re-records or stops. Keys are single characters read from the terminal.
"""

from __future__ import annotations

from drivers.interfaces import TeleopEvent

SESSION_KEYS: dict[str, TeleopEvent] = {
    "s": TeleopEvent.SAVE,
    "f": TeleopEvent.SAVE_FAILURE,
    "d": TeleopEvent.DISCARD,
    "r": TeleopEvent.RERECORD,
    "q": TeleopEvent.STOP,
}


def session_key_help() -> str:
    """One line for status displays, e.g. ``[s] save  [f] save as failure  [d] discard ...``."""
    labels = {
        TeleopEvent.SAVE: "save",
        TeleopEvent.SAVE_FAILURE: "save as failure",
        TeleopEvent.DISCARD: "discard",
        TeleopEvent.RERECORD: "re-record",
        TeleopEvent.STOP: "stop",
    }
    return "  ".join(f"[{key}] {labels[event]}" for key, event in SESSION_KEYS.items())


def event_for_key(key: str) -> TeleopEvent | None:
    """The session event bound to ``key`` (case-insensitive), or None."""
    return SESSION_KEYS.get(key.lower())
