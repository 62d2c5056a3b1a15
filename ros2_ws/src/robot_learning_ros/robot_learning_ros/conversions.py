"""Arrays <-> ROS 2 messages, with the checks that turn a malformed message into a clear error.

Why one module: every node converts the same few message types, and a message with the wrong
encoding, size or joint names must be rejected the same way everywhere (a ``MessageError``
naming what was wrong and what was expected), never reshaped into a wrong observation.
Joints are always mapped by name, never by index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

# encoding -> (dtype, channels); the encodings our nodes publish and accept
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "32FC3": (np.dtype(np.float32), 3),
}


class MessageError(ValueError):
    """A message that cannot become an observation or a command; the text says why."""


# ---- time ----------------------------------------------------------------------------------------
def _split_ns(t: float) -> tuple[int, int]:
    sec, nanosec = divmod(round(t * 1e9), 1_000_000_000)
    return int(sec), int(nanosec)


def to_stamp(t: float) -> Time:
    """Seconds -> ``builtin_interfaces/Time`` (the source's clock, e.g. sim time)."""
    sec, nanosec = _split_ns(t)
    return Time(sec=sec, nanosec=nanosec)


def from_stamp(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def to_duration(t: float) -> Duration:
    sec, nanosec = _split_ns(t)
    return Duration(sec=sec, nanosec=nanosec)


def from_duration(d: Duration) -> float:
    return float(d.sec) + float(d.nanosec) * 1e-9


# ---- images --------------------------------------------------------------------------------------
def default_encoding(arr: np.ndarray) -> str:
    if arr.dtype == np.uint8:
        return "rgb8" if arr.ndim == 3 else "mono8"
    if arr.dtype == np.uint16:
        return "16UC1"
    if arr.dtype == np.float32:
        return "32FC3" if arr.ndim == 3 and arr.shape[2] == 3 else "32FC1"
    raise MessageError(f"no image encoding for dtype {arr.dtype}; valid: uint8, uint16, float32")


def image_msg(arr: np.ndarray, t: float, frame_id: str = "", encoding: str | None = None) -> Image:
    """An ``sensor_msgs/Image`` holding ``arr`` (bytes copied once with ``tobytes``)."""
    arr = np.ascontiguousarray(arr)
    encoding = encoding or default_encoding(arr)
    if encoding not in ENCODINGS:
        raise MessageError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
    msg = Image()
    msg.header.stamp = to_stamp(t)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.strides[0])
    msg.data = arr.tobytes()  # assigning the ndarray itself is ~70 ms for 640x480
    return msg


def image_array(
    msg: Image, *, shape: Sequence[int] | None = None, encodings: Sequence[str] = ("rgb8",)
) -> np.ndarray:
    """The image in ``msg`` as an array (``bgr8`` is turned into RGB); checks everything.

    ``shape`` is the expected ``(H, W[, C])``; ``encodings`` the accepted encodings.
    """
    if msg.encoding not in encodings:
        raise MessageError(
            f"image encoding {msg.encoding!r} not accepted; expected {' or '.join(encodings)}"
        )
    dtype, channels = ENCODINGS[msg.encoding]
    h, w = int(msg.height), int(msg.width)
    row = w * channels * dtype.itemsize
    if msg.step != row:
        raise MessageError(f"image step {msg.step} does not match {w}x{channels}x{dtype} rows")
    if len(msg.data) != h * row:
        raise MessageError(
            f"image data has {len(msg.data)} bytes; {h}x{w} {msg.encoding} needs {h * row}"
        )
    if shape is not None and (h, w) != (int(shape[0]), int(shape[1])):
        raise MessageError(f"image size {h}x{w} does not match the expected {shape[0]}x{shape[1]}")
    # a view of the message's own buffer (each message taken is a new object): no copy
    arr = np.frombuffer(msg.data, dtype=dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    out = arr.reshape((h, w, channels) if channels > 1 else (h, w)).astype(dtype, copy=False)
    if msg.encoding == "bgr8":
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


# ---- joints --------------------------------------------------------------------------------------
def joint_state_msg(
    names: Sequence[str],
    position: np.ndarray,
    t: float,
    velocity: np.ndarray | None = None,
) -> JointState:
    msg = JointState()
    msg.header.stamp = to_stamp(t)
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    if velocity is not None:
        msg.velocity = [float(v) for v in velocity]
    return msg


def joint_positions(msg: JointState, names: Sequence[str]) -> np.ndarray:
    """Positions of ``names`` (in that order) picked by name; missing names or NaN are errors."""
    if len(msg.position) != len(msg.name):
        raise MessageError(
            f"joint_states has {len(msg.name)} names but {len(msg.position)} positions"
        )
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(
            f"joint_states lacks joint(s) {', '.join(missing)}; it has {', '.join(msg.name)}"
        )
    values = np.array([msg.position[index[n]] for n in names], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise MessageError("joint_states holds NaN or Inf positions")
    return values


def joint_velocities(msg: JointState, names: Sequence[str]) -> np.ndarray:
    """Velocities of ``names`` picked by name; a message without velocities is an error."""
    if len(msg.velocity) != len(msg.name):
        raise MessageError(
            f"joint_states has {len(msg.name)} names but {len(msg.velocity)} velocities"
        )
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(f"joint_states lacks joint(s) {', '.join(missing)}")
    values = np.array([msg.velocity[index[n]] for n in names], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise MessageError("joint_states holds NaN or Inf velocities")
    return values


def trajectory_msg(
    names: Sequence[str],
    positions: np.ndarray,
    times_from_start: Sequence[float],
    t: float,
) -> JointTrajectory:
    """A ``JointTrajectory`` with one point per row of ``positions`` ``[T, len(names)]``."""
    positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    msg = JointTrajectory()
    msg.header.stamp = to_stamp(t)
    msg.joint_names = list(names)
    for row, dt in zip(positions, times_from_start, strict=True):
        point = JointTrajectoryPoint()
        point.positions = [float(v) for v in row]
        point.time_from_start = to_duration(float(dt))
        msg.points.append(point)
    return msg


def trajectory_points(msg: JointTrajectory, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(positions [T, len(names)], times_from_start [T])`` reordered by joint name.

    Unknown or missing joint names, ragged points, NaN and non-increasing times are errors.
    """
    if not msg.points:
        raise MessageError("joint trajectory has no points")
    unknown = [n for n in msg.joint_names if n not in names]
    missing = [n for n in names if n not in msg.joint_names]
    if unknown or missing or len(set(msg.joint_names)) != len(msg.joint_names):
        raise MessageError(
            f"joint trajectory names {list(msg.joint_names)} do not match the arm's joints "
            f"{list(names)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    order = [list(msg.joint_names).index(n) for n in names]
    rows = []
    for k, point in enumerate(msg.points):
        if len(point.positions) != len(msg.joint_names):
            raise MessageError(
                f"trajectory point {k} has {len(point.positions)} positions for "
                f"{len(msg.joint_names)} joints"
            )
        rows.append([point.positions[i] for i in order])
    positions = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise MessageError("joint trajectory holds NaN or Inf positions")
    times = np.array([from_duration(p.time_from_start) for p in msg.points])
    if np.any(np.diff(times) <= 0):
        raise MessageError("joint trajectory times_from_start must increase")
    return positions, times


# ---- poses ---------------------------------------------------------------------------------------
def pose_msg(
    pos: np.ndarray, quat_wxyz: np.ndarray, t: float, frame_id: str = "base"
) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = to_stamp(t)
    msg.header.frame_id = frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pos)
    q.w, q.x, q.y, q.z = (float(v) for v in quat_wxyz)
    return msg


def pose_values(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """``(position [3], quaternion wxyz [4])``; NaN is an error."""
    p, q = msg.pose.position, msg.pose.orientation
    pos = np.array([p.x, p.y, p.z])
    quat = np.array([q.w, q.x, q.y, q.z])
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
        raise MessageError("pose holds NaN or Inf")
    return pos, quat


def camera_info_msg(
    height: int, width: int, fovy_deg: float, t: float, frame_id: str = ""
) -> CameraInfo:
    """Pinhole ``CameraInfo`` of an undistorted camera with vertical field of view ``fovy_deg``."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp = to_stamp(t)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(height), int(width)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
