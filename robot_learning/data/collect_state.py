"""What a recording session is asked to do, and what it has done so far.

Why separate from the loop: the status thread, the CLI summary and tests read these without
touching the loop, and the loop writes them without knowing who reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    SAVED = "saved"
    DISCARDED = "discarded"
    RERECORD = "rerecord"
    STOPPED = "stopped"  # stop key mid-episode: the episode is discarded


@dataclass
class SessionConfig:
    """What to record and how fast; see ``docs/collect.md`` for the policies behind each field."""

    episodes: int
    max_steps: int
    fps: float  # control rate (Hz); the store's nominal fps
    realtime: bool = True  # False: run as fast as possible (sim only)
    task: str = ""
    operator: str = ""
    source: str = ""
    seed: int = 0
    auto_save: bool = True  # end of episode (success / limit) commits it without a key
    successes_only: bool = False  # an episode that ends without success is discarded
    reset_time_s: float = 0.0  # pause between episodes for the operator to reset the scene


@dataclass
class SessionStats:
    """Live counters, written by the loop thread and read by the status thread."""

    episodes_target: int = 0
    episode: int = 0  # store index of the episode being recorded
    attempt: int = 0  # episode attempts so far (saved, discarded, re-recorded)
    step: int = 0  # steps recorded in the current attempt
    phase: str = "starting"
    episodes_saved: int = 0
    episodes_discarded: int = 0
    episodes_rerecorded: int = 0
    steps_saved: int = 0
    steps_recorded: int = 0  # including discarded attempts
    successes: int = 0
    overruns: int = 0  # ticks that ran past their deadline (real-time mode)
    dropped_frames: int = 0  # camera frames whose timestamp did not advance (a stale frame)
    backpressure_waits: int = 0  # times the loop waited for the image encoder pool
    loop_rate_hz: float = 0.0  # recent achieved tick rate
    loop_s: float = 0.0  # wall seconds from first to last tick start, summed over attempts
    loop_intervals: int = 0  # tick-to-tick intervals within those spans
    stopped: bool = False
    interrupted: bool = False
    max_late_ms: float = 0.0

    def achieved_rate_hz(self) -> float:
        """Achieved tick rate over every attempt (the pauses between episodes excluded)."""
        return self.loop_intervals / self.loop_s if self.loop_s > 0 else 0.0


__all__ = ["Outcome", "SessionConfig", "SessionStats"]
