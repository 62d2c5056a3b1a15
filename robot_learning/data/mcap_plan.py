"""Planning an MCAP import: features, control rate and every episode's timeline.

Why plan first: every bag is read and checked (topics, types, joints, shapes, rates) and every
episode's timeline is computed before the store is created or opened for appending, so bad input
costs nothing and leaves no half-written store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_learning.data.mcap_align import Timeline, align, estimate_rate, split_windows
from robot_learning.data.mcap_map import McapImportError, TopicMap
from robot_learning.data.mcap_scan import BagScan
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)


@dataclass
class EpisodePlan:
    """One episode to write: its bag, its timeline and its language strings."""

    scan: BagScan
    bag_episode: int
    timeline: Timeline
    language: dict[str, str]

    @property
    def source(self) -> str:
        return str(self.scan.path.resolve())


@dataclass
class ImportPlan:
    """Everything the write needs: the store's features, action keys, rate and episodes."""

    features: SpecDict
    actions: tuple[str, ...]
    fps: float
    episodes: list[EpisodePlan]
    skipped: list[str] = field(default_factory=list)


def build_plan(
    scans: Sequence[BagScan],
    topic_map: TopicMap,
    fps: float | None = None,
    episode_gap: float | None = None,
) -> ImportPlan:
    """Features, control rate and every episode's timeline (raises McapImportError)."""
    features = _features(scans)
    actions = tuple(e.feature for e in topic_map.entries if e.role == "action")
    rate = _rate(scans, topic_map, fps)
    split_topic = topic_map.split_on or topic_map.clock
    split_feature = next((e.feature for e in topic_map.entries if e.topic == split_topic), None)
    if episode_gap is not None and split_feature is None:
        raise McapImportError(
            "--episode-gap needs a topic to look for gaps in: set 'split_on:' (or 'clock:') "
            f"in {topic_map.source}"
        )
    if split_feature is not None and features[split_feature].kind == "language":
        raise McapImportError(f"split_on {split_topic} is a language topic; pick a sensor topic")
    if episode_gap is not None and split_feature is not None:
        _check_gap(episode_gap, [s.streams[split_feature].stamps for s in scans], split_topic)
    plan = ImportPlan(features, actions, rate, [])
    for scan in scans:
        windows = split_windows(
            scan.streams[split_feature].stamps if split_feature else np.zeros(0, np.int64),
            episode_gap,
        )
        for number, window in enumerate(windows):
            timeline = align(scan.streams, rate, window)
            if not len(timeline):
                plan.skipped.append(
                    f"{scan.path} episode {number}: no tick ({timeline.empty_reason})"
                )
                continue
            language: dict[str, str] = {}
            for key, samples in scan.language.items():
                text = _instruction(samples, timeline.ticks)
                if text is not None:
                    language[key] = text
            plan.episodes.append(EpisodePlan(scan, number, timeline, language))
    if not plan.episodes:
        more = len(plan.skipped) - 3
        raise McapImportError(
            f"no episode could be built from {len(plan.skipped)} window(s): "
            + "; ".join(plan.skipped[:3])
            + (f"; and {more} more" if more > 0 else "")
        )
    return plan


def _check_gap(gap: float, stamps: list[np.ndarray], topic: str | None) -> None:
    """A gap no longer than the topic's own sample interval would make every sample an episode."""
    try:
        interval = 1.0 / estimate_rate(stamps)
    except ValueError:
        return
    if gap <= interval:
        raise McapImportError(
            f"--episode-gap {gap:g} s is not longer than the sample interval of {topic} "
            f"({interval:.3g} s): every sample would start a new episode"
        )


def _features(scans: Sequence[BagScan]) -> SpecDict:
    features = SpecDict({k: c.spec() for k, c in scans[0].converters.items()})
    for scan in scans[1:]:
        other = SpecDict({k: c.spec() for k, c in scan.converters.items()})
        for key, spec in features.items():
            theirs = other[key]
            if (spec.shape, spec.kind) != (theirs.shape, theirs.kind):
                raise McapImportError(
                    f"{scan.path}: feature {key!r} is {theirs.kind} {theirs.shape} but "
                    f"{scans[0].path} has {spec.kind} {spec.shape}; one store needs one shape"
                )
    return features


def _rate(scans: Sequence[BagScan], topic_map: TopicMap, fps: float | None) -> float:
    if fps is not None:
        return float(fps)
    if topic_map.fps is not None:
        return topic_map.fps
    if topic_map.clock is None:
        raise McapImportError(
            f"no control rate: pass --fps HZ or name a 'clock:' topic in {topic_map.source}"
        )
    feature = next(e.feature for e in topic_map.entries if e.topic == topic_map.clock)
    if feature not in scans[0].streams:
        raise McapImportError(f"clock {topic_map.clock} is a language topic; pick a sensor topic")
    try:
        return estimate_rate([s.streams[feature].stamps for s in scans])
    except ValueError as exc:
        raise McapImportError(
            f"cannot measure the rate of clock {topic_map.clock}: {exc}"
        ) from None


def _instruction(samples: list[tuple[int, str]], ticks: np.ndarray) -> str | None:
    """The string in force at the first tick, else the first one sent during the episode."""
    if not samples:
        return None
    stamps = np.array([t for t, _ in samples], dtype=np.int64)
    before = int(np.searchsorted(stamps, ticks[0], side="right")) - 1
    during = int(np.searchsorted(stamps, ticks[-1], side="right"))
    if before < 0 and during == 0:
        return None
    chosen = samples[before][1] if before >= 0 else samples[0][1]
    later = {text for _, text in samples[max(before, 0) : during]} - {chosen}
    if later:
        LOG.warning("instruction changes during an episode; keeping %r, not %s", chosen, later)
    return chosen


__all__ = ["EpisodePlan", "ImportPlan", "build_plan"]
