"""The topic map of ``dataset import-mcap``: which ROS 2 topic becomes which store feature.

Why a file and not flags: a robot's bags keep the same topics for months, so the mapping (topic
-> feature, joint order, which topic is the action, which clock drives the timeline) is written
once, reviewed, and reused. This module only parses and checks the YAML; binding it to the
message types found in a bag happens in :mod:`robot_learning.data.mcap_messages`.

Format::

    robot: ur5e                  # optional: recorded in the store
    task: pick the cube          # optional: default episode task (--task overrides)
    clock: /joint_states         # optional: its rate is the default --fps
    split_on: /joint_states      # optional: gaps in this topic split episodes (default: clock)
    topics:
      /camera/camera/color/image_raw: {feature: scene_rgb, kind: rgb}
      /joint_states: {feature: joint_pos, field: position, joints: [shoulder_pan_joint, ...]}
      /arm_controller/joint_trajectory: {feature: action, role: action, joints: [...]}
      /instruction: {feature: instruction}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class McapImportError(ValueError):
    """Bad input to the MCAP importer: the message names what was wrong and what is valid."""


TOP_KEYS = ("robot", "task", "clock", "split_on", "fps", "topics")
TOPIC_KEYS = ("feature", "kind", "role", "field", "joints", "names", "dtype", "description")
KINDS = ("rgb", "depth", "lowdim", "language")
ROLES = ("observation", "action")
LOWDIM_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TopicEntry:
    """One ``topics:`` entry: how the messages of ``topic`` become feature ``feature``."""

    topic: str
    feature: str
    kind: str | None = None
    role: str = "observation"
    field: str | None = None
    joints: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    dtype: str = "float32"
    description: str = ""


@dataclass(frozen=True)
class TopicMap:
    """A parsed map file; ``entries`` keep the file's order (it becomes the feature order)."""

    entries: tuple[TopicEntry, ...]
    robot: str = ""
    task: str = ""
    clock: str | None = None
    split_on: str | None = None
    fps: float | None = None
    source: str = ""

    @property
    def topics(self) -> list[str]:
        return [e.topic for e in self.entries]


def load_map(path: str | Path) -> TopicMap:
    """Read and check a map YAML file; raises :class:`McapImportError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise McapImportError(f"map file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise McapImportError(f"map file {path} is not valid YAML: {_one_line(exc)}") from None
    return parse_map(doc, source=str(path))


def parse_map(doc: Any, source: str = "<map>") -> TopicMap:
    """Check a map document (already loaded from YAML)."""
    if not isinstance(doc, Mapping):
        raise McapImportError(f"{source}: expected a mapping with a 'topics:' section")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise McapImportError(f"{source}: unknown key(s) {unknown}; valid keys: {list(TOP_KEYS)}")
    topics = doc.get("topics")
    if not isinstance(topics, Mapping) or not topics:
        raise McapImportError(
            f"{source}: 'topics:' must map topic names to entries such as "
            "'/joint_states: {feature: joint_pos, joints: [...]}'"
        )
    entries = tuple(_entry(str(topic), spec, source) for topic, spec in topics.items())
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.feature in seen:
            raise McapImportError(
                f"{source}: feature {entry.feature!r} is mapped from both {seen[entry.feature]} "
                f"and {entry.topic}; each feature needs its own topic"
            )
        seen[entry.feature] = entry.topic
    mapped = [e.topic for e in entries]
    for key in ("clock", "split_on"):
        value = doc.get(key)
        if value is not None and value not in mapped:
            raise McapImportError(
                f"{source}: {key} {value!r} is not one of the mapped topics {mapped}"
            )
    fps = doc.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or not fps > 0):
        raise McapImportError(f"{source}: fps must be a positive number, got {fps!r}")
    return TopicMap(
        entries=entries,
        robot=str(doc.get("robot") or ""),
        task=str(doc.get("task") or ""),
        clock=doc.get("clock"),
        split_on=doc.get("split_on"),
        fps=float(fps) if fps is not None else None,
        source=source,
    )


def _entry(topic: str, spec: Any, source: str) -> TopicEntry:
    where = f"{source}: topic {topic}"
    if not topic.startswith("/"):
        raise McapImportError(f"{where}: topic names start with '/'")
    if not isinstance(spec, Mapping):
        raise McapImportError(f"{where}: expected a mapping like {{feature: NAME}}, got {spec!r}")
    unknown = [k for k in spec if k not in TOPIC_KEYS]
    if unknown:
        raise McapImportError(f"{where}: unknown key(s) {unknown}; valid: {list(TOPIC_KEYS)}")
    feature = spec.get("feature")
    if not isinstance(feature, str) or not feature or "/" in feature or feature.startswith("."):
        raise McapImportError(
            f"{where}: 'feature' must be a name without '/' (e.g. scene_rgb), got {feature!r}"
        )
    kind = spec.get("kind")
    if kind is not None and kind not in KINDS:
        raise McapImportError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
    role = spec.get("role", "observation")
    if role not in ROLES:
        raise McapImportError(f"{where}: role {role!r} is not one of {list(ROLES)}")
    if role == "action" and kind in ("language",):
        raise McapImportError(f"{where}: a language feature cannot be an action")
    dtype = spec.get("dtype", "float32")
    if dtype not in LOWDIM_DTYPES:
        raise McapImportError(f"{where}: dtype {dtype!r} is not one of {list(LOWDIM_DTYPES)}")
    return TopicEntry(
        topic=topic,
        feature=feature,
        kind=kind,
        role=role,
        field=None if spec.get("field") is None else str(spec["field"]),
        joints=_names(spec.get("joints"), f"{where}: joints"),
        names=_names(spec.get("names"), f"{where}: names"),
        dtype=dtype,
        description=str(spec.get("description") or ""),
    )


def _names(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise McapImportError(f"{where} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        dup = sorted({v for v in value if value.count(v) > 1})
        raise McapImportError(f"{where} lists {dup} more than once")
    return tuple(value)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


__all__ = ["McapImportError", "TopicEntry", "TopicMap", "load_map", "parse_map"]
