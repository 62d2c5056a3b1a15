"""Writing a planned MCAP import into an :class:`EpisodeStore`.

Why stream the frames: image pixels were not kept by the first pass (a minute of camera frames
is gigabytes), so each bag is read once more and only the frames some tick holds are decoded,
each kept in memory until the last tick that holds it has been written.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_learning.data.mcap_align import NS
from robot_learning.data.mcap_map import McapImportError
from robot_learning.data.mcap_plan import EpisodePlan, ImportPlan
from robot_learning.data.mcap_scan import iter_frames
from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)
SOURCE_FORMAT = "rosbag2-mcap"


@dataclass
class ImportResult:
    """What an import wrote; :meth:`to_json` is the CLI's ``--json`` object."""

    store: str
    fps: float
    bags: int
    episode_lengths: list[int] = field(default_factory=list)
    episodes_skipped: int = 0
    max_staleness_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "bags": self.bags,
            "episodes": len(self.episode_lengths),
            "episodes_skipped": self.episodes_skipped,
            "steps": int(sum(self.episode_lengths)),
            "episode_lengths": list(self.episode_lengths),
            "fps_hz": self.fps,
            "max_staleness_s": dict(self.max_staleness_s),
            "warnings": list(self.warnings),
        }


def write_plan(
    store: EpisodeStore, plan: ImportPlan, task: str, result: ImportResult
) -> ImportResult:
    """Write the plan's episodes (skipping those the store already holds)."""
    done = {(e.get("source"), e.get("bag_episode")) for e in store.episodes_meta()}
    todo: dict[int, list[EpisodePlan]] = {}
    for episode in plan.episodes:
        if (episode.source, episode.bag_episode) in done:
            result.episodes_skipped += 1
            continue
        todo.setdefault(id(episode.scan), []).append(episode)
    for episodes in todo.values():
        _write_bag(store, episodes, task, result)
    return result


def _write_bag(
    store: EpisodeStore, episodes: list[EpisodePlan], task: str, result: ImportResult
) -> None:
    scan = episodes[0].scan
    images = scan.image_features
    uses: dict[str, Counter[int]] = {f: Counter() for f in images}
    for episode in episodes:
        for f in images:
            uses[f].update(scan.streams[f].order[episode.timeline.index[f]].tolist())
    frames = iter_frames(scan.path, scan.converters, uses)
    cache: dict[str, dict[int, np.ndarray]] = {f: {} for f in images}
    try:
        for episode in episodes:
            _write_episode(store, episode, task, frames, cache, uses, result)
    finally:
        frames.close()


def _write_episode(
    store: EpisodeStore,
    episode: EpisodePlan,
    task: str,
    frames: Iterator[tuple[str, int, np.ndarray]],
    cache: dict[str, dict[int, np.ndarray]],
    uses: dict[str, Counter[int]],
    result: ImportResult,
) -> None:
    scan, timeline = episode.scan, episode.timeline
    writer = store.new_episode(
        task=task,
        source=episode.source,
        bag_episode=episode.bag_episode,
        source_format=SOURCE_FORMAT,
        start_time=float(timeline.ticks[0]) / NS,
    )
    try:
        for k in range(len(timeline)):
            values: dict[str, Any] = dict(episode.language) if k == 0 else {}
            stamps: dict[str, float] = {}
            for key, stream in scan.streams.items():
                held = int(timeline.index[key][k])
                stamps[key] = float(stream.stamps[held]) / NS
                if key in cache:
                    position = int(stream.order[held])
                    while position not in cache[key]:
                        item = next(frames, None)
                        if item is None:
                            raise McapImportError(
                                f"{scan.path}: frame {position} of {key!r} is missing on the "
                                "second read; did the bag change during the import?"
                            )
                        cache[item[0]][item[1]] = item[2]
                    values[key] = cache[key][position]
                    uses[key][position] -= 1
                    if not uses[key][position]:
                        del cache[key][position]
                else:
                    values[key] = scan.values[key][held]
            writer.add_step(values, stamps)
        index = writer.commit(max_staleness_s=dict(timeline.staleness_s))
    except BaseException:
        writer.discard()
        raise
    result.episode_lengths.append(len(timeline))
    for key, stale in timeline.staleness_s.items():
        result.max_staleness_s[key] = max(stale, result.max_staleness_s.get(key, 0.0))
    LOG.info(
        "episode %d <- %s #%d: %d steps", index, scan.path.name, episode.bag_episode, len(timeline)
    )


__all__ = ["SOURCE_FORMAT", "ImportResult", "write_plan"]
