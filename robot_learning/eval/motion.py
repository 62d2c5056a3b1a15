"""Smoothness of the executed action stream: joint-velocity jumps at and between chunk joins.

Why: a chunked policy is smooth within a chunk; what users see is the join. A jump is the
largest change of any arm joint's velocity from one control tick to the next. Ticks whose
action came from a different chunk than the previous tick's (including a stall, where the arm
holds) are boundaries; the rest are within a chunk. Comparing the two tells whether joining
chunks costs smoothness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class MotionStats:
    """Joint-velocity jumps (rad/s per tick) split into chunk boundaries and within chunks."""

    boundary: list[float] = field(default_factory=list)
    within: list[float] = field(default_factory=list)

    def add(self, jump: float, boundary: bool) -> None:
        (self.boundary if boundary else self.within).append(jump)

    def to_json(self) -> dict[str, Any]:
        def summary(values: list[float], label: str) -> dict[str, Any]:
            arr = np.asarray(values, dtype=np.float64)
            if arr.size == 0:
                return {f"{label}_ticks": 0}
            return {
                f"{label}_ticks": int(arr.size),
                f"{label}_jump_rad_s_max": float(arr.max()),
                f"{label}_jump_rad_s_p99": float(np.percentile(arr, 99)),
                f"{label}_jump_rad_s_mean": float(arr.mean()),
            }

        return {**summary(self.boundary, "boundary"), **summary(self.within, "within")}
