"""ROS 2 message -> feature value converters for ``dataset import-mcap``.

Why one small class per message type: each type hides its payload differently (pixel rows with
padding and an encoding string, joint arrays keyed by name, the first point of a trajectory),
and a wrong guess silently corrupts a data set. Every converter checks what it reads and names
the topic and the field when a message does not fit the map.

Joint arrays are always picked by joint name, never by index: drivers publish joints in their
own order (often alphabetical), which need not match the order the map asks for.
"""

from __future__ import annotations

from typing import Any

import imagecodecs
import numpy as np

from robot_learning.data.mcap_map import McapImportError, TopicEntry
from robot_learning.specs import FeatureSpec

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
TWIST = "geometry_msgs/msg/Twist"
STRING = "std_msgs/msg/String"

# encoding -> (channels, dtype) for sensor_msgs/Image
RGB_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1}
DEPTH_ENCODINGS = ("16uc1", "mono16")
TWIST_NAMES = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
DEPTH_HEADER_BYTES = 12  # compressed_depth_image_transport's ConfigHeader before the PNG


def stamp_ns(msg: Any, log_ns: int) -> int:
    """The header stamp (sensor clock) when the message has a non-zero one, else the log time."""
    header = getattr(msg, "header", None)
    if header is not None:
        stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        if stamp > 0:
            return stamp
    return int(log_ns)


class Converter:
    """Turns the messages of one topic into values of one feature.

    ``check`` runs on every message in the first (validating) pass: it returns the value for
    low-dim and language features (``None`` = skip this message) and only checks image
    messages, whose pixels are decoded later by ``value`` when a tick needs them.
    """

    kinds: tuple[str, ...] = ("lowdim",)
    fields: tuple[str, ...] = ()
    is_image = False

    def __init__(self, entry: TopicEntry, msgtype: str) -> None:
        self.entry = entry
        self.msgtype = msgtype
        self.where = f"topic {entry.topic} ({msgtype})"
        self.kind = entry.kind or self.kinds[0]
        self.shape: tuple[int, ...] | None = None
        self.names: tuple[str, ...] | None = None
        if entry.kind is not None and entry.kind not in self.kinds:
            raise McapImportError(
                f"{self.where}: kind {entry.kind!r} does not fit this message type; valid: "
                f"{list(self.kinds)}"
            )
        if entry.field is not None and entry.field not in self.fields:
            valid = list(self.fields) or "none (this type has no 'field' option)"
            raise McapImportError(
                f"{self.where}: field {entry.field!r} is not valid; valid: {valid}"
            )
        if entry.joints is not None and msgtype not in (JOINT_STATE, TRAJECTORY):
            raise McapImportError(
                f"{self.where}: 'joints' only applies to JointState and JointTrajectory topics"
            )
        if entry.role == "action" and self.kind != "lowdim":
            raise McapImportError(f"{self.where}: an action must be a low-dim feature")

    def check(self, msg: Any) -> Any:
        return self._fix_shape(self.value(msg))

    def value(self, msg: Any) -> Any:
        raise NotImplementedError

    def _fix_shape(self, value: np.ndarray) -> np.ndarray:
        self._check_shape(value.shape)
        return value

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if self.shape is None:
            self.shape = shape
        elif shape != self.shape:
            raise McapImportError(
                f"{self.where}: a message has shape {shape}, earlier ones had {self.shape}; "
                "a feature needs a fixed shape"
            )

    def spec(self) -> FeatureSpec:
        if self.shape is None:
            raise McapImportError(f"{self.where}: no usable message")
        dtype = {"rgb": "uint8", "depth": "uint16"}.get(self.kind, self.entry.dtype)
        names = self.names if self.kind == "lowdim" else None
        return FeatureSpec(
            self.shape,
            dtype if self.kind != "language" else "str",
            self.kind,  # type: ignore[arg-type]
            names=names,
            description=self.entry.description or f"from {self.entry.topic} ({self.msgtype})",
        )


class JointConverter(Converter):
    """JointState (``field`` position/velocity/effort) or the first JointTrajectory point."""

    def __init__(self, entry: TopicEntry, msgtype: str) -> None:
        self.trajectory = msgtype == TRAJECTORY
        self.fields = (
            ("positions", "velocities", "accelerations", "effort")
            if self.trajectory
            else ("position", "velocity", "effort")
        )
        super().__init__(entry, msgtype)
        if entry.joints is None:
            raise McapImportError(
                f"{self.where}: list the joints to record by name ('joints: [...]'); joints "
                "are mapped by name, never by index"
            )
        self.joints = entry.joints
        self.names = entry.joints
        self.field = entry.field or self.fields[0]
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def check(self, msg: Any) -> Any:
        if self.trajectory and not msg.points:
            return None  # an empty trajectory (a "stop") carries no target
        return super().check(msg)

    def value(self, msg: Any) -> np.ndarray:
        names = tuple(msg.joint_names if self.trajectory else msg.name)
        source = msg.points[0] if self.trajectory else msg
        values = np.asarray(getattr(source, self.field), dtype=np.float64)
        index = self._index.get(names)
        if index is None:
            missing = [j for j in self.joints if j not in names]
            if missing:
                raise McapImportError(
                    f"{self.where}: joint(s) {missing} from the map are not in the message; "
                    f"it has {list(names)}"
                )
            index = np.array([names.index(j) for j in self.joints])
            self._index[names] = index
        if values.shape != (len(names),):
            raise McapImportError(
                f"{self.where}: field {self.field!r} has {values.size} values for "
                f"{len(names)} joint names"
            )
        return values[index]


class ArrayConverter(Converter):
    """std_msgs/Float64MultiArray: the ``data`` vector (fixed length; ``names`` label it)."""

    def value(self, msg: Any) -> np.ndarray:
        values = np.asarray(msg.data, dtype=np.float64).reshape(-1)
        if self.entry.names is not None and len(self.entry.names) != values.size:
            raise McapImportError(
                f"{self.where}: {values.size} values but the map names {len(self.entry.names)}"
            )
        self.names = self.entry.names
        return values


class TwistConverter(Converter):
    """geometry_msgs/Twist(Stamped) -> [linear.xyz, angular.xyz]."""

    def value(self, msg: Any) -> np.ndarray:
        twist = msg.twist if self.msgtype == TWIST_STAMPED else msg
        self.names = TWIST_NAMES
        lin, ang = twist.linear, twist.angular
        return np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z], dtype=np.float64)


class StringConverter(Converter):
    """std_msgs/String -> a language feature (kept per episode in its metadata)."""

    kinds = ("language",)

    def check(self, msg: Any) -> Any:
        self.shape = ()
        return str(msg.data)


class ImageConverter(Converter):
    """sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8/mono8 -> rgb; 16UC1/mono16 -> depth)."""

    kinds = ("rgb", "depth")
    is_image = True

    def check(self, msg: Any) -> Any:
        encoding = str(msg.encoding).lower()
        if self.entry.kind is None and self.shape is None:
            self.kind = "depth" if encoding in DEPTH_ENCODINGS else "rgb"
        valid = DEPTH_ENCODINGS if self.kind == "depth" else tuple(RGB_ENCODINGS)
        if encoding not in valid:
            raise McapImportError(
                f"{self.where}: encoding {msg.encoding!r} cannot become a {self.kind} feature; "
                f"supported: {list(valid)}"
            )
        self._check_shape((int(msg.height), int(msg.width)) + ((3,) if self.kind == "rgb" else ()))
        channels, itemsize = self._layout(encoding)
        if int(msg.step) < int(msg.width) * channels * itemsize or len(msg.data) < int(
            msg.step
        ) * int(msg.height):
            raise McapImportError(
                f"{self.where}: {len(msg.data)} data bytes do not hold a {msg.height}x"
                f"{msg.width} {msg.encoding} image with step {msg.step}"
            )
        return None

    def _layout(self, encoding: str) -> tuple[int, int]:
        if encoding in DEPTH_ENCODINGS:
            return 1, 2
        return RGB_ENCODINGS[encoding], 1

    def value(self, msg: Any) -> np.ndarray:
        encoding = str(msg.encoding).lower()
        channels, itemsize = self._layout(encoding)
        height, width, step = int(msg.height), int(msg.width), int(msg.step)
        data = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
        rows = data[: step * height].reshape(height, step)[:, : width * channels * itemsize]
        dtype = np.dtype(np.uint16 if itemsize == 2 else np.uint8)
        if itemsize == 2:
            dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
        pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
        if self.kind == "depth":
            return pixels[..., 0].astype(np.uint16)
        if encoding.startswith("bgr"):
            pixels = pixels[..., 2::-1]
        return _to_rgb(pixels)


class CompressedImageConverter(Converter):
    """sensor_msgs/CompressedImage: JPEG or PNG (also compressedDepth PNG), via imagecodecs."""

    kinds = ("rgb", "depth")
    is_image = True

    def check(self, msg: Any) -> Any:
        if self.shape is None:  # decode one frame to learn the size; the rest are checked later
            if self.entry.kind is None:
                fmt = str(msg.format).lower()
                self.kind = "depth" if ("16uc1" in fmt or "compresseddepth" in fmt) else "rgb"
            self._fix_shape(self.value(msg))
        else:
            self._payload(msg)
        return None

    def _payload(self, msg: Any) -> tuple[bytes, str]:
        data = bytes(memoryview(msg.data))
        if "compresseddepth" in str(msg.format).lower():
            data = data[DEPTH_HEADER_BYTES:]
        if data.startswith(JPEG_MAGIC):
            return data, "jpeg"
        if data.startswith(PNG_MAGIC):
            return data, "png"
        raise McapImportError(
            f"{self.where}: format {msg.format!r} holds neither JPEG nor PNG data; supported "
            "compressed formats: jpeg, png, compressedDepth png"
        )

    def value(self, msg: Any) -> np.ndarray:
        data, codec = self._payload(msg)
        decode = imagecodecs.jpeg8_decode if codec == "jpeg" else imagecodecs.png_decode
        try:
            pixels = np.asarray(decode(data))
        except Exception as exc:
            raise McapImportError(f"{self.where}: {codec} data does not decode: {exc}") from None
        if self.kind == "depth":
            if pixels.dtype != np.uint16 or pixels.ndim != 2:
                raise McapImportError(
                    f"{self.where}: depth needs single-channel 16-bit PNG, got {pixels.dtype} "
                    f"{pixels.shape}"
                )
            return pixels
        if pixels.dtype != np.uint8:
            raise McapImportError(f"{self.where}: rgb needs 8-bit images, got {pixels.dtype}")
        return _to_rgb(pixels if pixels.ndim == 3 else pixels[..., None])


def _to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1|3|4) uint8 -> (H, W, 3): grey repeated, alpha dropped."""
    if pixels.shape[-1] == 1:
        return np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3])


CONVERTERS: dict[str, type[Converter]] = {
    IMAGE: ImageConverter,
    COMPRESSED: CompressedImageConverter,
    JOINT_STATE: JointConverter,
    TRAJECTORY: JointConverter,
    FLOAT_ARRAY: ArrayConverter,
    TWIST_STAMPED: TwistConverter,
    TWIST: TwistConverter,
    STRING: StringConverter,
}
SUPPORTED_TYPES = tuple(sorted(CONVERTERS))


def make_converter(entry: TopicEntry, msgtype: str) -> Converter:
    """The converter for ``entry``'s topic, whose messages in the bag are of ``msgtype``."""
    cls = CONVERTERS.get(msgtype)
    if cls is None:
        raise McapImportError(
            f"topic {entry.topic}: message type {msgtype} is not supported; supported types: "
            f"{', '.join(SUPPORTED_TYPES)}"
        )
    return cls(entry, msgtype)


__all__ = ["SUPPORTED_TYPES", "Converter", "make_converter", "stamp_ns"]
