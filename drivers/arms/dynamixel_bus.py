"""A Dynamixel protocol 2.0 bus over ``dynamixel_sdk``: ping, write, sync read, sync write.

Why: the leader arm (teleop) and the follower arm (a driven robot) talk to the same X-series
servos the same way; one wrapper gives both the SDK's group reads and writes with retries on
line noise and errors that say what to check (power, cabling, ids, baud rate) instead of an SDK
result code. Also holds the tick <-> radian conversion of the X-series (4096 ticks per turn).
"""

from __future__ import annotations

import logging
import math
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import dynamixel_sdk as dxl

from drivers.interfaces import DeviceNotConnectedError

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

PROTOCOL_VERSION = 2.0
# X-series (XL330 / XL430 / XM430) control table
ADDR_TORQUE_ENABLE = 64
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_VELOCITY = 128
ADDR_PRESENT_POSITION = 132
ADDR_MAX_POSITION_LIMIT = 48
ADDR_MIN_POSITION_LIMIT = 52
LEN_POSITION = 4
LEN_PRESENT_POSITION = LEN_POSITION
VELOCITY_UNIT_RAD_S = 0.229 * 2.0 * math.pi / 60.0  # Present Velocity unit: 0.229 rev/min
TICKS_PER_REV = 4096
CENTER_TICK = 2048
DEFAULT_PORT = "/dev/ttyUSB0"
DEFAULT_BAUDRATE = 57600  # X-series factory default
SDK_BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
                 1000000, 1152000, 2000000, 2500000, 3000000, 3500000, 4000000)  # fmt: skip


class DynamixelBusError(RuntimeError):
    """The bus answered wrongly or not at all (ids, power, cabling, baud rate)."""


def ticks_to_rad(ticks: int) -> float:
    return (ticks - CENTER_TICK) * 2.0 * math.pi / TICKS_PER_REV


def rad_to_ticks(angle: float) -> int:
    return round(angle * TICKS_PER_REV / (2.0 * math.pi)) + CENTER_TICK


def wrap_near(value: float, center: float) -> float:
    """``value`` plus a multiple of 2π, within ±π of ``center``."""
    return center + (value - center + math.pi) % (2.0 * math.pi) - math.pi


def _signed(raw: int, length: int) -> int:
    return raw - (1 << (8 * length)) if raw >= 1 << (8 * length - 1) else raw


class DynamixelBus:
    """The few protocol 2.0 operations an arm needs; ``label`` names the device in errors."""

    def __init__(
        self,
        port: str,
        baudrate: int = DEFAULT_BAUDRATE,
        retries: int = 2,
        label: str = "Dynamixel bus",
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.retries = retries
        self.label = label
        self._port: Any = None
        self._packet = dxl.PacketHandler(PROTOCOL_VERSION)

    @property
    def where(self) -> str:
        return f"{self.port} at {self.baudrate} baud"

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        port = dxl.PortHandler(self.port)
        try:
            port.openPort()
        except OSError as exc:  # serial.SerialException is an OSError
            raise DeviceNotConnectedError(
                f"cannot open the {self.label}'s port {self.port} ({exc}); is the USB adapter "
                "plugged in (ls /dev/serial/by-id) and are you in the 'dialout' group?"
            ) from exc
        self._port = port
        if not self._guard("set baud rate", port.setBaudRate, self.baudrate):
            self.close()
            raise DynamixelBusError(
                f"baud rate {self.baudrate} unsupported; valid: {SDK_BAUDRATES}"
            )

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.closePort()
            except (OSError, termios.error) as exc:
                LOG.debug("closing %s: %s", self.port, exc)
            self._port = None

    def _guard(self, what: str, call: Callable[..., _T], *args: Any) -> _T:
        """Run an SDK call; an I/O error means the adapter is gone, not a protocol problem."""
        if self._port is None:
            raise DeviceNotConnectedError(f"{self.label} bus {self.port} is not open")
        try:
            return call(*args)
        except (OSError, termios.error) as exc:
            self._port.is_using = False  # the SDK leaves its busy flag set when a read raises
            raise DeviceNotConnectedError(
                f"{self.label} bus {self.where}: {what} failed ({exc}); was the USB adapter "
                "unplugged or the servos' power cut?"
            ) from exc

    def ping(self, dxl_id: int) -> tuple[int | None, str]:
        """``(model number, "")`` or ``(None, why)`` when the servo does not answer properly."""
        model, result, error = self._guard(f"ping {dxl_id}", self._packet.ping, self._port, dxl_id)
        if result != dxl.COMM_SUCCESS:
            return None, self._packet.getTxRxResult(result)
        if error:
            LOG.warning("servo %d reports %s", dxl_id, self._packet.getRxPacketError(error))
        return int(model), ""

    def silent_ids(self, ids: Sequence[int]) -> dict[int, str]:
        """``{id: why}`` of the servos that do not answer a ping (retried on line noise)."""
        silent = {}
        for dxl_id in ids:
            for _ in range(self.retries + 1):
                model, why = self.ping(dxl_id)
                if model is not None:
                    break
            if model is None:
                silent[dxl_id] = why
        return silent

    def write1(self, dxl_id: int, address: int, value: int) -> None:
        result, error = self._guard(
            f"write servo {dxl_id}", self._packet.write1ByteTxRx, self._port, dxl_id, address, value
        )
        if result != dxl.COMM_SUCCESS or error:
            why = self._packet.getTxRxResult(result) or self._packet.getRxPacketError(error)
            raise DynamixelBusError(
                f"servo {dxl_id} on {self.where}: write {address} failed: {why}"
            )

    def sync_read(self, address: int, length: int, ids: Sequence[int]) -> dict[int, int]:
        """Signed values of one field from every servo in ``ids``, retried on line noise."""
        fields = self.sync_read_fields(address, [(address, length)], ids)
        return {dxl_id: values[0] for dxl_id, values in fields.items()}

    def sync_read_fields(
        self, start: int, fields: Sequence[tuple[int, int]], ids: Sequence[int]
    ) -> dict[int, list[int]]:
        """Several adjacent fields ``(address, length)`` of every servo in one sync read."""
        end = max(a + n for a, n in fields)
        group = dxl.GroupSyncRead(self._port, self._packet, start, end - start)
        for dxl_id in ids:
            group.addParam(dxl_id)
        result = dxl.COMM_TX_FAIL
        for attempt in range(self.retries + 1):
            result = self._guard("sync read", group.txRxPacket)
            if result == dxl.COMM_SUCCESS:
                break
            LOG.debug("sync read attempt %d: %s", attempt, self._packet.getTxRxResult(result))
            time.sleep(0.005)  # let stragglers arrive, then drop them
            self._guard("clear port", self._port.clearPort)
        else:
            raise DynamixelBusError(self._diagnose(ids, self._packet.getTxRxResult(result)))
        return {
            dxl_id: [_signed(group.getData(dxl_id, a, n), n) for a, n in fields] for dxl_id in ids
        }

    def sync_write(self, address: int, length: int, values: Mapping[int, int]) -> None:
        """Write one field of every servo in ``values`` (``{id: value}``) in one packet.

        Sync write has no status reply: a servo that rejects the value (e.g. outside its
        position limits) or is silent is only seen on the next read.
        """
        group = dxl.GroupSyncWrite(self._port, self._packet, address, length)
        for dxl_id, value in values.items():
            data = list(int(value).to_bytes(length, "little", signed=value < 0))
            if not group.addParam(dxl_id, data):
                raise DynamixelBusError(f"sync write: cannot add servo {dxl_id} twice")
        result = self._guard("sync write", group.txPacket)
        if result != dxl.COMM_SUCCESS:
            raise DynamixelBusError(
                f"{self.label} on {self.where}: sync write failed: "
                f"{self._packet.getTxRxResult(result)}"
            )

    def _diagnose(self, ids: Sequence[int], why: str) -> str:
        silent = [i for i in ids if self.ping(i)[0] is None]
        if silent:
            answering = [i for i in ids if i not in silent]
            return (
                f"{self.label} on {self.where}: no answer from servo id(s) {silent} ({why}); "
                f"answering: {answering}. Check those servos' cable and power, and that ids "
                "and baud rate match the calibration file"
            )
        return (
            f"{self.label} on {self.where}: sync read failed {self.retries + 1} times ({why}) "
            "though every servo answers a ping; check the cable and the baud rate"
        )


__all__ = [
    "ADDR_GOAL_POSITION",
    "ADDR_PRESENT_POSITION",
    "ADDR_TORQUE_ENABLE",
    "DEFAULT_BAUDRATE",
    "DEFAULT_PORT",
    "SDK_BAUDRATES",
    "DynamixelBus",
    "DynamixelBusError",
    "rad_to_ticks",
    "ticks_to_rad",
    "wrap_near",
]
