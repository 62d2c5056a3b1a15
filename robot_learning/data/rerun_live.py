"""Live view of a collection session in Rerun (``robot-learning collect --view``).

Why: an operator recording demonstrations wants to see what is being stored (the cameras as
recorded, the joint trajectory, the commanded actions) while recording, not after. Each control
step is logged on the ``step`` and sensor-clock ``time`` timelines under ``episode_<k>/``, so
earlier attempts stay browsable. ``--view`` spawns the Rerun viewer; ``--view FILE.rrd`` writes
a recording instead (headless machines, or to attach to a bug report). Logging happens on the
control thread, so it is kept to what the viewer needs: images, low-dim vectors as scalars.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.data.rerun_view import _import_rerun
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)
APPLICATION_ID = "robot_learning_collect"


class LiveView:
    """Logs every recorded step of a session to a spawned viewer or an ``.rrd`` file."""

    def __init__(self, features: SpecDict, target: str | None) -> None:
        rr = _import_rerun()
        self._rr = rr
        self.features = features
        self.rec = rr.RecordingStream(APPLICATION_ID)
        if target:
            path = Path(target)
            if path.suffix.lower() != ".rrd":
                raise ValueError(f"--view takes an .rrd file to write, got {target!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.rec.save(str(path))
        else:
            self.rec.spawn()
        self.episode = 0

    def start_episode(self, episode: int, instruction: str) -> None:
        self.episode = episode
        if instruction:
            self.rec.log(f"episode_{episode}/instruction", self._rr.TextDocument(instruction))

    def log_step(self, step: int, values: Mapping[str, Any], stamps: Mapping[str, float]) -> None:
        rr, rec = self._rr, self.rec
        rec.set_time("step", sequence=step)
        for key, value in values.items():
            spec = self.features.features.get(key)
            if spec is None or spec.kind == "language":
                continue
            rec.set_time("time", duration=float(stamps.get(key, 0.0)))
            entity = f"episode_{self.episode}/{key}"
            if spec.kind == "rgb":
                rec.log(entity, rr.Image(np.asarray(value)))
            elif spec.kind == "depth":
                rec.log(entity, rr.DepthImage(np.asarray(value)))
            else:
                rec.log(entity, rr.Scalars(np.asarray(value, dtype=np.float64).reshape(-1)))

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()
