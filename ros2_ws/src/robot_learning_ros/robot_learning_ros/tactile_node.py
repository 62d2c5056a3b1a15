"""A tactile driver (``gelsight_mini``, ``digit``, ``anyskin``) publishing one image per feature.

Every feature of the sensor's observation goes to ``/tactile/<feature>`` as a
``sensor_msgs/Image`` (sensor-data QoS) stamped with the reading's own timestamp, and only when
that timestamp advanced, so polling faster than the sensor never republishes a reading:

* ``uint8`` ``(H, W, 3)`` (``<name>_rgb``) -> ``rgb8``;
* ``int16`` difference images (``<name>_diff``) -> ``float32`` ``32FC3`` (ROS has no signed
  16-bit 3-channel encoding our consumers accept);
* ``(N, 3)`` magnetometer fields (AnySkin) -> ``32FC1`` of height ``N`` and width 3.

``~/rezero`` (``std_srvs/Trigger``) re-captures the no-contact baseline when the driver has
``rezero()``. Timeouts are logged and polling goes on; any other driver error is logged and the
node exits with status 1.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NoReturn

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from drivers.interfaces import TactileSensor
from drivers.registry import make_tactile
from robot_learning_ros import topics
from robot_learning_ros.conversions import MessageError, image_msg
from robot_learning_ros.node_utils import declare, parse_driver_args, run_node
from robot_learning_ros.qos import SENSOR_QOS


def tactile_image(feature: str, value: Any) -> tuple[np.ndarray, str]:
    """``(array, encoding)`` for one tactile feature; an unsupported layout is a MessageError."""
    arr = np.asarray(value)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        return arr, "rgb8"
    if arr.dtype == np.uint8 and arr.ndim == 2:
        return arr, "mono8"
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise MessageError(f"tactile feature {feature!r} has dtype {arr.dtype}; expected numbers")
    arr = arr.astype(np.float32)
    if arr.ndim == 1:
        return arr.reshape(-1, 1), "32FC1"
    if arr.ndim == 2:
        return arr, "32FC1"
    if arr.ndim == 3 and arr.shape[2] in (1, 3):
        return (arr[..., 0], "32FC1") if arr.shape[2] == 1 else (arr, "32FC3")
    raise MessageError(
        f"tactile feature {feature!r} has shape {arr.shape}; expected (N,), (H, W), (H, W, 1) "
        "or (H, W, 3)"
    )


class TactileNode(Node):
    """Owns one :class:`TactileSensor` and the thread that polls and publishes it."""

    def __init__(self) -> None:
        super().__init__("tactile")
        p = declare(self, driver="anyskin", driver_args="{}", rate_hz=60.0)
        rate = float(p["rate_hz"])
        if rate <= 0:
            self._fail(f"rate_hz must be positive, got {rate}")
        self.period = 1.0 / rate
        self.driver = str(p["driver"])
        self.sensor = self._start_driver(str(p["driver_args"]))
        self._lock = threading.Lock()  # rezero and read share the device
        self._pubs: dict[str, Publisher] = {}
        self._last_stamp: dict[str, float] = {}
        self._skipped: set[str] = set()
        self.published = 0
        self.timeouts = 0
        self.failed = False
        self.create_service(Trigger, "~/rezero", self._on_rezero)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tactile", daemon=True)
        self._thread.start()
        features = list(self.sensor.observation_spec())
        self.get_logger().info(
            f"{self.sensor.device_name}: polling at {rate:g} Hz, publishing "
            f"{', '.join(topics.tactile_topic(f) for f in features)}"
        )

    def _fail(self, message: str) -> NoReturn:
        """Log why the node cannot start and exit with status 1 (no traceback to dig through)."""
        self.get_logger().error(message)
        raise SystemExit(1)

    def _start_driver(self, driver_args: str) -> TactileSensor:
        try:
            kwargs = parse_driver_args(driver_args, "{port: /dev/ttyACM0}")
        except ValueError as exc:
            self._fail(str(exc))
        if self.driver == "sim":
            self._fail(
                "the 'sim' tactile driver needs a SimRobot and runs inside sim_node; "
                "use gelsight_mini, digit or anyskin here"
            )
        try:
            sensor = make_tactile(self.driver, **kwargs)
            sensor.connect()
        except Exception as exc:
            self._fail(
                f"tactile driver {self.driver!r} failed to start with driver_args {kwargs}: {exc}"
            )
        return sensor

    # ---- polling -------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    with self._lock:
                        obs = self.sensor.read()
                except TimeoutError as exc:
                    self.timeouts += 1
                    self.get_logger().warning(f"{exc} (timeouts so far: {self.timeouts})")
                    continue
                self._publish(obs.values, obs.timestamps)
                next_tick += self.period
                delay = next_tick - time.monotonic()
                if delay <= 0:
                    next_tick = time.monotonic()
                elif self._stop.wait(delay):
                    return
        except Exception as exc:
            if self._stop.is_set():
                return
            self.failed = True
            self.get_logger().error(
                f"{self.sensor.device_name} failed after {self.published} messages: {exc}; "
                "stopping the node"
            )
            rclpy.try_shutdown(context=self.context)

    def _publish(self, values: dict[str, Any], stamps: dict[str, float]) -> None:
        for feature, value in values.items():
            t = float(stamps.get(feature, 0.0))
            if t <= self._last_stamp.get(feature, float("-inf")):
                continue  # the same reading as last time
            self._last_stamp[feature] = t
            try:
                arr, encoding = tactile_image(feature, value)
            except MessageError as exc:
                if feature not in self._skipped:
                    self._skipped.add(feature)
                    self.get_logger().warning(f"not publishing: {exc}")
                continue
            pub = self._pubs.get(feature)
            if pub is None:
                pub = self.create_publisher(Image, topics.tactile_topic(feature), SENSOR_QOS)
                self._pubs[feature] = pub
            pub.publish(image_msg(arr, t, feature, encoding))
            self.published += 1

    def _on_rezero(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        rezero = getattr(self.sensor, "rezero", None)
        if not callable(rezero):
            response.success = False
            response.message = f"{self.sensor.device_name} has no rezero()"
            return response
        try:
            with self._lock:
                baseline = rezero()
        except Exception as exc:
            response.success = False
            response.message = f"rezero failed: {exc}"
            self.get_logger().error(response.message)
            return response
        self.get_logger().info(f"{self.sensor.device_name}: re-zeroed")
        response.success = True
        response.message = f"baseline mean {float(np.mean(baseline)):.4g}"
        return response

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=3.0)
        self.get_logger().info(
            f"{self.sensor.device_name}: published {self.published} messages, "
            f"{self.timeouts} read timeouts"
        )
        self.sensor.disconnect()


def main(args: list[str] | None = None) -> None:
    run_node(TactileNode, args)


if __name__ == "__main__":
    main()
