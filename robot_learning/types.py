"""Timestamped observations and actions: what crosses every robot, dataset and policy boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Observation:
    """Feature values plus the time each stream was sensed (sensor clock, seconds).

    Streams sampled together (e.g. all proprioception) may share one timestamp; every feature in
    ``values`` has an entry in ``timestamps`` so consumers can measure staleness per stream.
    """

    values: dict[str, Any]
    timestamps: dict[str, float]

    def __post_init__(self) -> None:
        missing = [k for k in self.values if k not in self.timestamps]
        if missing:
            raise ValueError(f"observation features without a timestamp: {missing}")

    def age(self, now: float) -> dict[str, float]:
        """Seconds since each stream was sensed."""
        return {k: now - t for k, t in self.timestamps.items()}


@dataclass
class Action:
    """Values per action feature and the time they are meant to be executed (seconds)."""

    values: dict[str, np.ndarray]
    t_exec: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
