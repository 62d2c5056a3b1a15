"""A Dynamixel protocol 2.0 servo bus, emulated on a pseudo-terminal.

Why: the leader-arm teleop reads its servos through the real ``dynamixel_sdk``. Serving a bus on a
pty lets the unmodified ``PortHandler(emulator.port)`` + ``PacketHandler(2.0)`` +
``GroupSyncRead`` run against servos whose positions a test sets, including faults that are hard
to produce on a bench on demand: corrupted CRCs, servos that stop answering, an unplugged adapter.

Implemented from the ROBOTIS protocol 2.0 e-manual: packets ``FF FF FD 00 | ID | LEN | INST |
PARAMS | CRC16`` with the CRC-16 of polynomial 0x8005, byte stuffing (``FF FF FD`` -> ``FF FF FD
FD`` from the instruction byte on), status packets (instruction 0x55) with the error byte, and
the instructions PING, READ, WRITE, SYNC_READ, SYNC_WRITE, BULK_READ and BULK_WRITE. Each servo has
an X-series control table (XL330 / XL430 / XM430 layout): EEPROM fields are writable only with
torque off, read-only fields reject writes with an access error, Goal Position is checked against
the position limits, and with torque on the present position follows the goal at once.

The bus is served by a forked child process, not a thread: the SDK busy-waits for status packets
while holding the GIL, which can starve an in-process server for longer than the SDK's timeout on a
loaded machine. Servo control tables live in shared memory, so a test still moves horns, silences
servos or corrupts packets from its own process while the child serves them.

Baud rates are not emulated: a pty accepts and ignores them, so any rate the SDK supports works.
Run ``python -m drivers.emulators.dynamixel_bus --ids 1 2 3 4 5 6 7`` for a bus to try the
leader teleop against by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import logging
import math
import mmap
import multiprocessing
import os
import select
import signal
import time
import tty
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

LOG = logging.getLogger(__name__)

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
INST_STATUS = 0x55
MAX_PACKET_LENGTH = 1024  # the SDK's RXPACKET_MAX_LEN; longer length fields are line noise
ERRBIT_ALERT = 0x80  # set in every status while Hardware Error Status is non-zero
_MP = multiprocessing.get_context("fork")  # locks and counters shared with the server process
STALE_PARTIAL_S = 0.2  # a servo drops a half-received packet after this much bus silence


class Instruction(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    BULK_READ = 0x92
    BULK_WRITE = 0x93


class ErrorCode(enum.IntEnum):
    """The error byte of a status packet (bits 0-6; bit 7 is the hardware alert)."""

    NONE = 0
    RESULT_FAIL = 1
    INSTRUCTION = 2
    CRC = 3
    DATA_RANGE = 4
    DATA_LENGTH = 5
    DATA_LIMIT = 6
    ACCESS = 7


# ---- framing ------------------------------------------------------------------------------------
def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """CRC-16 (polynomial 0x8005, initial 0, not reflected) as the protocol 2.0 spec defines."""
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def add_stuffing(packet: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` from the instruction byte on; fix the length field.

    ``packet`` runs from the header to the last parameter (no CRC). As in the SDK, the look-back
    for the first instruction bytes includes the length bytes.
    """
    out = bytearray(packet[:7])
    for i in range(7, len(packet)):
        out.append(packet[i])
        if packet[i] == 0xFD and packet[i - 1] == 0xFF and packet[i - 2] == 0xFF:
            out.append(0xFD)
    out[5:7] = (len(out) - 7 + 2).to_bytes(2, "little")
    return bytes(out)


def remove_stuffing(raw: bytes) -> bytes:
    """The instruction byte and parameters of a received packet (header..CRC), unstuffed."""
    out = bytearray()
    for j in range(7, len(raw) - 2):
        if raw[j] == 0xFD and raw[j + 1] == 0xFD and raw[j - 1] == 0xFF and raw[j - 2] == 0xFF:
            continue
        out.append(raw[j])
    return bytes(out)


def build_packet(
    dxl_id: int, instruction: int, params: bytes = b"", *, error: int | None = None
) -> bytes:
    """A complete, stuffed packet with CRC; ``error`` makes it a status packet's error byte."""
    body = bytes([instruction]) + (b"" if error is None else bytes([error])) + params
    raw = HEADER + bytes([dxl_id]) + (len(body) + 2).to_bytes(2, "little") + body
    stuffed = add_stuffing(raw)
    return stuffed + crc16(stuffed).to_bytes(2, "little")


@dataclass(frozen=True)
class Packet:
    """One received packet; ``params`` are unstuffed. ``crc_ok`` False: corrupted on the wire."""

    id: int
    instruction: int
    params: bytes
    crc_ok: bool = True


class PacketParser:
    """Splits a byte stream into packets, skipping line noise between them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._last_feed = 0.0

    def feed(self, data: bytes, now: float | None = None) -> list[Packet]:
        now = time.monotonic() if now is None else now
        if self._buf and now - self._last_feed > STALE_PARTIAL_S:
            LOG.debug("dropping %d stale bytes of a partial packet", len(self._buf))
            self._buf.clear()
        self._last_feed = now
        self._buf += data
        packets: list[Packet] = []
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                del self._buf[: max(0, len(self._buf) - (len(HEADER) - 1))]
                return packets
            del self._buf[:start]
            if len(self._buf) < 7:
                return packets
            length = int.from_bytes(self._buf[5:7], "little")
            if length < 3 or length > MAX_PACKET_LENGTH:
                del self._buf[0]
                continue
            total = 7 + length
            if len(self._buf) < total:
                return packets
            raw = bytes(self._buf[:total])
            del self._buf[:total]
            crc_ok = crc16(raw[:-2]) == int.from_bytes(raw[-2:], "little")
            body = remove_stuffing(raw)
            if not body:
                continue
            packets.append(Packet(raw[4], body[0], body[1:], crc_ok))


# ---- servos -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    address: int
    size: int
    writable: bool = True
    eeprom: bool = False
    default: int = 0


# X-series (XL330, XL430, XM430) protocol 2.0 control table, the fields a host commonly uses.
CONTROL_TABLE: dict[str, Field] = {
    "model_number": Field(0, 2, writable=False, eeprom=True),
    "model_information": Field(2, 4, writable=False, eeprom=True),
    "firmware_version": Field(6, 1, writable=False, eeprom=True),
    "id": Field(7, 1, eeprom=True, default=1),
    "baud_rate": Field(8, 1, eeprom=True, default=1),  # 1 = 57600
    "return_delay_time": Field(9, 1, eeprom=True, default=250),
    "drive_mode": Field(10, 1, eeprom=True),
    "operating_mode": Field(11, 1, eeprom=True, default=3),  # 3 = position control
    "secondary_id": Field(12, 1, eeprom=True, default=255),
    "protocol_type": Field(13, 1, eeprom=True, default=2),
    "homing_offset": Field(20, 4, eeprom=True),
    "moving_threshold": Field(24, 4, eeprom=True, default=10),
    "temperature_limit": Field(31, 1, eeprom=True, default=70),
    "max_voltage_limit": Field(32, 2, eeprom=True, default=70),
    "min_voltage_limit": Field(34, 2, eeprom=True, default=35),
    "pwm_limit": Field(36, 2, eeprom=True, default=885),
    "current_limit": Field(38, 2, eeprom=True, default=1750),
    "velocity_limit": Field(44, 4, eeprom=True, default=445),
    "max_position_limit": Field(48, 4, eeprom=True, default=4095),
    "min_position_limit": Field(52, 4, eeprom=True, default=0),
    "shutdown": Field(63, 1, eeprom=True, default=52),
    "torque_enable": Field(64, 1),
    "led": Field(65, 1),
    "status_return_level": Field(68, 1, default=2),
    "registered_instruction": Field(69, 1, writable=False),
    "hardware_error_status": Field(70, 1, writable=False),
    "velocity_i_gain": Field(76, 2, default=1920),
    "velocity_p_gain": Field(78, 2, default=100),
    "position_d_gain": Field(80, 2),
    "position_i_gain": Field(82, 2),
    "position_p_gain": Field(84, 2, default=800),
    "goal_pwm": Field(100, 2, default=885),
    "goal_current": Field(102, 2, default=1750),
    "goal_velocity": Field(104, 4),
    "profile_acceleration": Field(108, 4),
    "profile_velocity": Field(112, 4),
    "goal_position": Field(116, 4, default=2048),
    "realtime_tick": Field(120, 2, writable=False),
    "moving": Field(122, 1, writable=False),
    "moving_status": Field(123, 1, writable=False),
    "present_pwm": Field(124, 2, writable=False),
    "present_current": Field(126, 2, writable=False),
    "present_velocity": Field(128, 4, writable=False),
    "present_position": Field(132, 4, writable=False, default=2048),
    "velocity_trajectory": Field(136, 4, writable=False),
    "position_trajectory": Field(140, 4, writable=False),
    "present_input_voltage": Field(144, 2, writable=False, default=50),
    "present_temperature": Field(146, 1, writable=False, default=30),
}
TABLE_SIZE = 148
MODEL_NUMBERS: dict[str, int] = {
    "XL330-M077": 1190,
    "XL330-M288": 1200,
    "XL430-W250": 1060,
    "XM430-W350": 1020,
}
POSITION_CONTROL_MODES = (3,)  # extended position (4) and current-based (5) allow any goal

_WRITABLE = bytearray(TABLE_SIZE)
_EEPROM = bytearray(TABLE_SIZE)
for _f in CONTROL_TABLE.values():
    for _a in range(_f.address, _f.address + _f.size):
        _WRITABLE[_a] = int(_f.writable)
        _EEPROM[_a] = int(_f.eeprom)


class EmulatedServo:
    """One servo's control table and the bit of behaviour a host can observe."""

    def __init__(
        self, dxl_id: int, model: str = "XL330-M288", position: int = 2048, firmware: int = 52
    ) -> None:
        if not 0 <= dxl_id <= MAX_ID:
            raise ValueError(f"servo id must be 0..{MAX_ID}, got {dxl_id}")
        if model not in MODEL_NUMBERS:
            raise ValueError(f"unknown model {model!r}; emulated models: {sorted(MODEL_NUMBERS)}")
        self.model = model
        self.table = mmap.mmap(-1, TABLE_SIZE)  # anonymous shared memory: seen by the server
        self._responsive = _MP.Value("b", 1, lock=False)
        self._lock = _MP.RLock()
        for name, f in CONTROL_TABLE.items():
            self.set(name, f.default)
        self.set("model_number", MODEL_NUMBERS[model])
        self.set("firmware_version", firmware)
        self.set("id", dxl_id)
        self.set("present_position", position)
        self.set("goal_position", position)

    # ---- direct access (the "physics" side: tests move the horn by hand) ----------------------
    def get(self, name: str) -> int:
        f = CONTROL_TABLE[name]
        with self._lock:
            raw = self.table[f.address : f.address + f.size]
        return int.from_bytes(raw, "little", signed=f.size > 1)

    def set(self, name: str, value: int) -> None:
        f = CONTROL_TABLE[name]
        with self._lock:
            self.table[f.address : f.address + f.size] = int(value).to_bytes(
                f.size, "little", signed=value < 0
            )

    @property
    def id(self) -> int:
        return self.get("id")

    @property
    def responsive(self) -> bool:
        """False: powered off or cable cut; the servo stays silent."""
        return bool(self._responsive.value)

    @responsive.setter
    def responsive(self, value: bool) -> None:
        self._responsive.value = int(value)

    @property
    def position(self) -> int:
        """Present Position in ticks (4096 per revolution, 2048 = centre)."""
        return self.get("present_position")

    @position.setter
    def position(self, ticks: int) -> None:
        self.set("present_position", ticks)

    @property
    def torque_enabled(self) -> bool:
        return bool(self.get("torque_enable"))

    @property
    def error_byte(self) -> int:
        """The alert bit every status carries while a hardware error is latched."""
        return ERRBIT_ALERT if self.get("hardware_error_status") else 0

    # ---- protocol access (what a host can do over the wire) ------------------------------------
    def read(self, address: int, length: int) -> tuple[int, bytes]:
        if length <= 0:
            return ErrorCode.DATA_LENGTH, b""
        if address < 0 or address + length > TABLE_SIZE:
            return ErrorCode.ACCESS, b""
        with self._lock:
            return ErrorCode.NONE, bytes(self.table[address : address + length])

    def write(self, address: int, data: bytes) -> int:
        if not data:
            return ErrorCode.DATA_LENGTH
        end = address + len(data)
        if address < 0 or end > TABLE_SIZE:
            return ErrorCode.ACCESS
        if not all(_WRITABLE[address:end]):
            return ErrorCode.ACCESS
        with self._lock:
            if any(_EEPROM[address:end]) and self.torque_enabled:
                return ErrorCode.ACCESS  # EEPROM is locked while torque is on
            candidate = bytearray(self.table)  # validate on a copy, then write only the range
            candidate[address:end] = data
            goal = CONTROL_TABLE["goal_position"]
            if address < goal.address + goal.size and end > goal.address:
                value = int.from_bytes(candidate[goal.address : goal.address + 4], "little")
                value = value - (1 << 32) if value >= 1 << 31 else value
                if self.get("operating_mode") in POSITION_CONTROL_MODES and not (
                    self.get("min_position_limit") <= value <= self.get("max_position_limit")
                ):
                    return ErrorCode.DATA_LIMIT
            torque_was_on = self.torque_enabled
            self.table[address:end] = data
            if self.torque_enabled and not torque_was_on:  # torque on holds the present pose
                self.set("goal_position", self.get("present_position"))
            if self.torque_enabled:  # an ideal servo: reaches its goal within one exchange
                self.set("present_position", self.get("goal_position"))
        return ErrorCode.NONE


# ---- the bus ------------------------------------------------------------------------------------
class DynamixelBusEmulator:
    """Servos on one bus, served on a pty whose slave path (:attr:`port`) the SDK opens.

    Use as a context manager or ``start()`` / ``stop()``. ``stop()`` (alias ``unplug()``) closes
    the pty: the host then sees what a pulled USB adapter gives, an I/O error. Servos and
    ``response_delay_s`` are fixed at ``start()``; servo tables, ``responsive`` flags and
    :meth:`corrupt_next_status` are shared with the server and may change while it runs.
    """

    def __init__(self, servos: Iterable[EmulatedServo] = (), response_delay_s: float = 0.0):
        self._servos: list[EmulatedServo] = []
        self._pid = 0
        for servo in servos:
            self.add(servo)
        self.response_delay_s = response_delay_s
        self.port = ""
        self._packets = _MP.Value("q", 0)
        self._crc_errors = _MP.Value("q", 0)
        self._corrupt_budget = _MP.Value("q", 0)
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1

    @classmethod
    def with_servos(
        cls, ids: Sequence[int], model: str = "XL330-M288", position: int = 2048
    ) -> DynamixelBusEmulator:
        return cls(EmulatedServo(i, model=model, position=position) for i in ids)

    # ---- servos --------------------------------------------------------------------------------
    def add(self, servo: EmulatedServo) -> EmulatedServo:
        """Put a servo on the bus (before ``start()``: the server works on its own copy)."""
        if self.running:
            raise RuntimeError("add servos before start(); the running server would not see them")
        if servo.id in self.ids:
            raise ValueError(f"servo id {servo.id} is already on the bus")
        self._servos.append(servo)
        return servo

    def _find(self, dxl_id: int) -> EmulatedServo | None:
        """By the id in the control table now (a host may have written a new one)."""
        return next((s for s in self._servos if s.id == dxl_id), None)

    def servo(self, dxl_id: int) -> EmulatedServo:
        servo = self._find(dxl_id)
        if servo is None:
            raise KeyError(f"no servo {dxl_id} on the bus; ids: {self.ids}")
        return servo

    @property
    def ids(self) -> list[int]:
        return sorted(s.id for s in self._servos)

    @property
    def packets_received(self) -> int:
        return int(self._packets.value)

    @property
    def crc_errors(self) -> int:
        """Instruction packets that arrived with a bad CRC."""
        return int(self._crc_errors.value)

    def set_positions(self, ticks: Mapping[int, int]) -> None:
        """Move servo horns by hand (the leader arm's operator): ``{id: present position}``."""
        for dxl_id, value in ticks.items():
            self.servo(dxl_id).position = int(value)

    def corrupt_next_status(self, count: int = 1) -> None:
        """Send the next ``count`` status packets with a broken CRC (line noise)."""
        with self._corrupt_budget.get_lock():
            self._corrupt_budget.value += count

    # ---- lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._pid != 0

    def start(self) -> DynamixelBusEmulator:
        if self.running:
            return self
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo / line editing before the host configures the port
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the server: serve until woken, never return into the caller's code
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it on Ctrl-C
                keep = sorted({0, 1, 2, self._master, self._wake_r})
                for low, high in zip(keep, [*keep[1:], os.sysconf("SC_OPEN_MAX")]):
                    os.closerange(low + 1, high)  # inherited fds (pipes, ports) must not linger
                self._serve()
            except BaseException:
                LOG.exception("dynamixel bus emulator on %s failed", self.port)
                code = 1
            finally:
                os._exit(code)
        self._pid = pid
        LOG.debug("dynamixel bus emulator (pid %d) with ids %s on %s", pid, self.ids, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty (the adapter is unplugged)."""
        if not self._pid:
            return
        os.write(self._wake_w, b"x")
        deadline = time.monotonic() + 2.0
        while os.waitpid(self._pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
                break
            time.sleep(0.002)
        self._pid = 0
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1

    unplug = stop

    def __enter__(self) -> DynamixelBusEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- serving -------------------------------------------------------------------------------
    def _serve(self) -> None:
        parser = PacketParser()
        parent = os.getppid()
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.2)
            if self._wake_r in ready or os.getppid() != parent:  # stopped, or the test died
                return
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:  # EIO while no host holds the slave open
                time.sleep(0.005)
                continue
            for packet in parser.feed(data):
                replies = self._dispatch(packet)
                if replies and self.response_delay_s > 0:
                    time.sleep(self.response_delay_s)
                for reply in replies:
                    self._send(reply)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:  # nobody reads the bus: the bytes are lost, as on a wire
                LOG.debug("bus output full; dropped %d bytes", len(view))
                return
            except OSError:
                return
            view = view[written:]

    def _status(
        self, servo: EmulatedServo, error: int, params: bytes = b"", dxl_id: int | None = None
    ) -> bytes:
        dxl_id = servo.id if dxl_id is None else dxl_id
        packet = build_packet(dxl_id, INST_STATUS, params, error=error | servo.error_byte)
        with self._corrupt_budget.get_lock():
            if self._corrupt_budget.value > 0:
                self._corrupt_budget.value -= 1
                packet = packet[:-2] + bytes([packet[-2] ^ 0x5A, packet[-1]])
        return packet

    def _live(self, dxl_id: int) -> EmulatedServo | None:
        servo = self._find(dxl_id)
        return servo if servo is not None and servo.responsive else None

    def _dispatch(self, packet: Packet) -> list[bytes]:
        with self._packets.get_lock():
            self._packets.value += 1
        if not packet.crc_ok:
            with self._crc_errors.get_lock():
                self._crc_errors.value += 1
            servo = self._live(packet.id)
            return [self._status(servo, ErrorCode.CRC)] if servo is not None else []
        if packet.id == BROADCAST_ID:
            return self._broadcast(packet)
        servo = self._live(packet.id)
        if servo is None:
            return []
        level = servo.get("status_return_level")
        inst, params = packet.instruction, packet.params
        if inst == Instruction.PING:
            return [self._status(servo, ErrorCode.NONE, self._ping_params(servo))]
        if inst == Instruction.READ:
            error: int
            if len(params) != 4:
                error, data = ErrorCode.DATA_LENGTH, b""
            else:
                address, length = _u16(params, 0), _u16(params, 2)
                error, data = servo.read(address, length)
            return [self._status(servo, error, data)] if level >= 1 else []
        if inst == Instruction.WRITE:
            if len(params) < 3:
                error = ErrorCode.DATA_LENGTH
            else:
                error = servo.write(_u16(params, 0), params[2:])
            return [self._status(servo, error, dxl_id=packet.id)] if level >= 2 else []
        return [self._status(servo, ErrorCode.INSTRUCTION)] if level >= 2 else []

    @staticmethod
    def _ping_params(servo: EmulatedServo) -> bytes:
        return servo.get("model_number").to_bytes(2, "little") + bytes(
            [servo.get("firmware_version")]
        )

    def _broadcast(self, packet: Packet) -> list[bytes]:
        """Broadcast instructions: servos answer one after another in the order asked."""
        inst, params = packet.instruction, packet.params
        replies: list[bytes] = []
        if inst == Instruction.PING:
            for dxl_id in self.ids:
                if (servo := self._live(dxl_id)) is not None:
                    replies.append(self._status(servo, ErrorCode.NONE, self._ping_params(servo)))
        elif inst == Instruction.SYNC_READ and len(params) >= 5:
            address, length = _u16(params, 0), _u16(params, 2)
            for dxl_id in params[4:]:
                if (servo := self._live(dxl_id)) is not None:
                    error, data = servo.read(address, length)
                    replies.append(self._status(servo, error, data))
        elif inst == Instruction.SYNC_WRITE and len(params) >= 5:
            address, length = _u16(params, 0), _u16(params, 2)
            block = 1 + length
            for i in range(4, len(params) - block + 1, block):
                if (servo := self._live(params[i])) is not None:
                    servo.write(address, params[i + 1 : i + block])
        elif inst == Instruction.BULK_READ:
            for i in range(0, len(params) - 4, 5):
                if (servo := self._live(params[i])) is not None:
                    error, data = servo.read(_u16(params, i + 1), _u16(params, i + 3))
                    replies.append(self._status(servo, error, data))
        elif inst == Instruction.BULK_WRITE:
            i = 0
            while i + 5 <= len(params):
                dxl_id, address, length = params[i], _u16(params, i + 1), _u16(params, i + 3)
                if (servo := self._live(dxl_id)) is not None:
                    servo.write(address, params[i + 5 : i + 5 + length])
                i += 5 + length
        elif inst == Instruction.WRITE and len(params) >= 3:
            for dxl_id in self.ids:
                if (servo := self._live(dxl_id)) is not None:
                    servo.write(_u16(params, 0), params[2:])
        return replies


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | (data[offset + 1] << 8)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve an emulated bus until Ctrl-C, optionally wiggling the joints (manual trials)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ids", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--model", default="XL330-M288", choices=sorted(MODEL_NUMBERS))
    parser.add_argument("--wiggle", action="store_true", help="move every joint slowly")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with DynamixelBusEmulator.with_servos(args.ids, model=args.model) as bus:
        LOG.info("emulated Dynamixel bus (ids %s) on %s; Ctrl-C to stop", bus.ids, bus.port)
        start = time.monotonic()
        try:
            while True:
                time.sleep(0.02)
                if args.wiggle:
                    phase = 2 * math.pi * 0.2 * (time.monotonic() - start)
                    bus.set_positions({i: 2048 + int(200 * math.sin(phase + i)) for i in bus.ids})
        except KeyboardInterrupt:
            LOG.info("stopped")


if __name__ == "__main__":
    main()
