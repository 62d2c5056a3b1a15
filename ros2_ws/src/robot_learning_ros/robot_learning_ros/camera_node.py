"""A camera driver (``opencv``, ``realsense``) publishing realsense-ros style topics.

A reader thread publishes every frame the driver delivers: ``sensor_msgs/Image`` ``rgb8`` on
``/<camera_namespace>/<camera_name>/color/image_raw`` with its ``CameraInfo`` on
``.../color/camera_info``, and ``16UC1`` millimetres on ``.../aligned_depth_to_color/image_raw``
when the driver has depth, all with sensor-data QoS and frame id
``<camera_name>_color_optical_frame``. ``CameraInfo`` is the undistorted pinhole model of
``fovy_deg`` (the drivers report no calibrated intrinsics yet).

Stamps: ``stamp_source: driver`` keeps the driver's capture time (sensor clock, or a file's
media time), ``receive`` stamps with the ROS clock when the frame is read. Video files play at
their own frame rate (``max_rate_hz`` caps any source; 0 means no cap).

``/diagnostics`` carries frame counts and rate once a second. A driver error (device lost, file
ended) is logged and the node exits with status 1, so a supervisor can stop the rest.
"""

from __future__ import annotations

import threading
import time
from typing import NoReturn

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from drivers.interfaces import Camera
from drivers.registry import make_camera
from robot_learning_ros import topics
from robot_learning_ros.conversions import camera_info_msg, image_msg
from robot_learning_ros.node_utils import declare, parse_driver_args, run_node
from robot_learning_ros.qos import SENSOR_QOS

STAMP_SOURCES = ("driver", "receive")
DIAGNOSTICS_TOPIC = "/diagnostics"


class CameraNode(Node):
    """Owns one :class:`Camera` driver and the thread that reads and publishes it."""

    def __init__(self) -> None:
        super().__init__("camera")
        p = declare(
            self,
            driver="opencv",
            driver_args="{}",
            camera_name="camera",
            camera_namespace="camera",
            fovy_deg=60.0,
            stamp_source="driver",
            max_rate_hz=0.0,
        )
        self.name = str(p["camera_name"])
        self.frame_id = f"{self.name}_color_optical_frame"
        self.fovy = float(p["fovy_deg"])
        self.stamp_source = str(p["stamp_source"])
        if self.stamp_source not in STAMP_SOURCES:
            self._fail(
                f"stamp_source {self.stamp_source!r} is not valid; "
                f"valid: {', '.join(STAMP_SOURCES)}"
            )
        if not 0.0 < self.fovy < 180.0:
            self._fail(f"fovy_deg must be in (0, 180), got {self.fovy}")
        self.camera = self._start_driver(str(p["driver"]), str(p["driver_args"]))
        self.period = self._frame_period(float(p["max_rate_hz"]))
        ns = str(p["camera_namespace"])
        self.pub_color = self.create_publisher(Image, topics.color_topic(self.name, ns), SENSOR_QOS)
        self.pub_info = self.create_publisher(
            CameraInfo, topics.color_info_topic(self.name, ns), SENSOR_QOS
        )
        self.pub_depth = (
            self.create_publisher(Image, topics.depth_topic(self.name, ns), SENSOR_QOS)
            if self.camera.has_depth
            else None
        )
        self.pub_diag = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.published = 0
        self.failed = False
        self._error = ""
        self._last_published = 0
        self._last_dropped = 0
        self.create_timer(1.0, self._publish_diagnostics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="camera", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"{self.camera.device_name}: publishing {topics.color_topic(self.name, ns)}"
            + (" with depth" if self.pub_depth is not None else "")
            + f", stamps from {self.stamp_source}"
        )

    def _fail(self, message: str) -> NoReturn:
        """Log why the node cannot start and exit with status 1 (no traceback to dig through)."""
        self.get_logger().error(message)
        raise SystemExit(1)

    def _start_driver(self, driver: str, driver_args: str) -> Camera:
        try:
            kwargs = parse_driver_args(driver_args, "{source: /dev/video0, width: 640}")
        except ValueError as exc:
            self._fail(str(exc))
        try:
            camera = make_camera(driver, **kwargs)
            camera.connect()
        except Exception as exc:
            self._fail(f"camera driver {driver!r} failed to start with driver_args {kwargs}: {exc}")
        return camera

    def _frame_period(self, max_rate_hz: float) -> float:
        """Seconds between reads: files play at their frame rate, ``max_rate_hz`` caps all."""
        if max_rate_hz < 0:
            self._fail(f"max_rate_hz must be >= 0 (0: no cap), got {max_rate_hz}")
        period = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        fps = float(getattr(self.camera, "fps", 0.0) or 0.0)
        if getattr(self.camera, "is_live", True) is False and fps > 0:
            period = max(period, 1.0 / fps)
        return period

    # ---- reading -------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _loop(self) -> None:
        next_read = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.period > 0:
                    delay = next_read - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    next_read = max(next_read + self.period, time.monotonic() - self.period)
                self._publish_frame()
        except Exception as exc:
            if self._stop.is_set():
                return
            self.failed = True
            self._error = str(exc)
            self.get_logger().error(
                f"{self.camera.device_name} failed after {self.published} frames: {exc}; "
                "stopping the node"
            )
            rclpy.try_shutdown(context=self.context)

    def _publish_frame(self) -> None:
        rgb, t_capture = self.camera.read()
        t = t_capture if self.stamp_source == "driver" else self._now()
        height, width = rgb.shape[:2]
        self.pub_color.publish(image_msg(rgb, t, self.frame_id, "rgb8"))
        self.pub_info.publish(camera_info_msg(height, width, self.fovy, t, self.frame_id))
        if self.pub_depth is not None:
            depth, t_depth = self.camera.read_depth()
            t = t_depth if self.stamp_source == "driver" else t
            depth = np.asarray(depth, dtype=np.uint16)
            self.pub_depth.publish(image_msg(depth, t, self.frame_id, "16UC1"))
        self.published += 1

    # ---- reporting -----------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames the driver lost (0 for a driver that does not count them)."""
        return int(getattr(self.camera, "dropped_frames", 0))

    def _publish_diagnostics(self) -> None:
        published, dropped = self.published, self.dropped
        rate = published - self._last_published
        new_drops = dropped - self._last_dropped
        self._last_published, self._last_dropped = published, dropped
        status = DiagnosticStatus()
        status.name = f"camera_node: {self.name}"
        status.hardware_id = self.camera.device_name
        if self.failed:
            status.level, status.message = DiagnosticStatus.ERROR, self._error
        elif rate == 0:
            status.level, status.message = DiagnosticStatus.WARN, "no frames in the last second"
        elif new_drops:
            status.level, status.message = DiagnosticStatus.WARN, f"{new_drops} frame(s) dropped"
        else:
            status.level, status.message = DiagnosticStatus.OK, "streaming"
        if new_drops:
            self.get_logger().warning(f"{new_drops} frame(s) dropped in the last second")
        status.values = [
            KeyValue(key="frames_published", value=str(published)),
            KeyValue(key="frames_dropped", value=str(dropped)),
            KeyValue(key="rate_hz", value=str(rate)),
            KeyValue(key="frames_received", value=str(getattr(self.camera, "frames_received", ""))),
        ]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self.pub_diag.publish(msg)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self.get_logger().info(
            f"{self.camera.device_name}: published {self.published} frames, "
            f"driver dropped {self.dropped}"
        )
        self.camera.disconnect()


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args)


if __name__ == "__main__":
    main()
