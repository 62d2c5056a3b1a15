"""Reading ROS 2 bags for ``dataset import-mcap``: open, check against the map, collect stamps.

Why two passes over a bag: a minute of 640x480 camera frames is ~1.6 GB, too much to hold. The
first pass (here) deserializes every mapped message once to check it against the map and keep
its stamp, the small low-dim values and the strings; image pixels are decoded only in the
second pass, and only for the frames some tick holds. Every problem a bag can have is found in
the first pass, before any store is created or changed.

Bags are read with ``rosbags`` (pure Python): a bare ``.mcap`` file or a rosbag2 directory.
Message definitions embedded in the bag are used; the ROS 2 Humble definitions are the fallback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_typestore

from robot_learning.data.mcap_align import Stream
from robot_learning.data.mcap_map import McapImportError, TopicMap
from robot_learning.data.mcap_messages import Converter, make_converter, stamp_ns

LOG = logging.getLogger(__name__)


@dataclass
class BagScan:
    """What the first pass learned about one bag (streams keyed by feature name)."""

    path: Path
    converters: dict[str, Converter]
    streams: dict[str, Stream] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)  # low-dim, in stamp order
    language: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # stamp-sorted
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def image_features(self) -> list[str]:
        return [k for k, c in self.converters.items() if c.is_image]


@contextmanager
def open_bag(path: Path) -> Iterator[AnyReader]:
    """An open ``AnyReader`` for one bag; bad paths and unreadable files -> McapImportError."""
    if not path.exists():
        raise McapImportError(f"bag {path} does not exist")
    if path.is_file() and path.suffix != ".mcap":
        raise McapImportError(
            f"bag {path} is not an .mcap file; pass a .mcap file or a rosbag2 directory"
        )
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise McapImportError(f"{path} is a directory without metadata.yaml: not a rosbag2 bag")
    reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
    try:
        reader.open()
    except (AnyReaderError, ReaderError, OSError, ValueError, KeyError) as exc:
        raise McapImportError(f"bag {path} cannot be read: {_one_line(exc)}") from None
    try:
        yield reader
    finally:
        reader.close()


def scan_bag(path: Path, topic_map: TopicMap) -> BagScan:
    """First pass over one bag: bind the map to its topics and check every mapped message."""
    try:
        with open_bag(path) as reader:
            return _scan(reader, path, topic_map)
    except McapImportError as exc:
        text = str(exc)
        raise McapImportError(text if str(path) in text else f"{path}: {text}") from None


def _scan(reader: AnyReader, path: Path, topic_map: TopicMap) -> BagScan:
    types: dict[str, set[str]] = {}
    for conn in reader.connections:
        types.setdefault(conn.topic, set()).add(conn.msgtype)
    missing = [t for t in topic_map.topics if t not in types]
    if missing:
        have = ", ".join(f"{t} ({'/'.join(sorted(m))})" for t, m in sorted(types.items()))
        raise McapImportError(
            f"topic(s) {missing} from the map are not in the bag; its topics: {have or 'none'}"
        )
    for topic in topic_map.topics:
        if len(types[topic]) > 1:
            raise McapImportError(f"topic {topic} carries several types {sorted(types[topic])}")
    by_topic = {e.topic: e.feature for e in topic_map.entries}
    scan = BagScan(
        path, {e.feature: make_converter(e, next(iter(types[e.topic]))) for e in topic_map.entries}
    )
    stamps: dict[str, list[int]] = {f: [] for f in scan.converters}
    values: dict[str, list[Any]] = {f: [] for f in scan.converters}
    conns = [c for c in reader.connections if c.topic in by_topic]
    for conn, log_ns, raw in reader.messages(connections=conns):
        feature = by_topic[conn.topic]
        converter = scan.converters[feature]
        try:
            msg = reader.deserialize(raw, conn.msgtype)
        except Exception as exc:  # rosbags raises several types for malformed CDR
            raise McapImportError(
                f"topic {conn.topic}: a {conn.msgtype} message does not deserialize: "
                f"{_one_line(exc)}"
            ) from None
        value = converter.check(msg)
        if value is None and not converter.is_image:
            scan.skipped[feature] += 1
            continue
        stamps[feature].append(stamp_ns(msg, log_ns))
        values[feature].append(value)
    for feature, converter in scan.converters.items():
        if scan.skipped[feature]:
            LOG.warning(
                "%s: skipped %d empty message(s) on %s",
                path,
                scan.skipped[feature],
                converter.entry.topic,
            )
        if converter.kind == "language":
            pairs = sorted(zip(stamps[feature], values[feature]), key=lambda p: p[0])
            scan.language[feature] = [(int(t), str(v)) for t, v in pairs]
            if not pairs:
                LOG.warning("%s: no message on %s: no instruction", path, converter.entry.topic)
            continue
        if not stamps[feature]:
            raise McapImportError(f"topic {converter.entry.topic} has no usable message")
        stream = Stream.from_arrival(stamps[feature])
        scan.streams[feature] = stream
        if not converter.is_image:
            scan.values[feature] = np.stack(values[feature])[stream.order]
    return scan


def iter_frames(
    path: Path, converters: Mapping[str, Converter], wanted: Mapping[str, Mapping[int, int]]
) -> Generator[tuple[str, int, np.ndarray], None, None]:
    """Second pass: ``(feature, arrival position, pixels)`` of the wanted image messages.

    ``wanted[feature]`` maps arrival positions to how many ticks use them; messages no tick
    holds are skipped without deserializing.
    """
    topics = {c.entry.topic: f for f, c in converters.items() if f in wanted}
    seen: Counter[str] = Counter()
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for conn, _log_ns, raw in reader.messages(connections=conns):
            feature = topics[conn.topic]
            position = seen[feature]
            seen[feature] += 1
            if not wanted[feature].get(position):
                continue
            converter = converters[feature]
            frame = converter.value(reader.deserialize(raw, conn.msgtype))
            if frame.shape != converter.shape:
                raise McapImportError(
                    f"{path}: topic {conn.topic}: frame {position} is {frame.shape}, earlier "
                    f"frames are {converter.shape}"
                )
            yield feature, position, frame


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = ["BagScan", "iter_frames", "open_bag", "scan_bag"]
