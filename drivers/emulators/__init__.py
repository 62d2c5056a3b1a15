"""Protocol-level emulators of hardware buses, so the real vendor SDKs can be tested here.

Why: a mock of a vendor library tests our assumptions about it; an emulator that speaks the wire
protocol lets the unmodified SDK (``dynamixel_sdk``, ...) run against it, so framing, CRCs,
timeouts and error paths are exercised the way they are on a lab bench.

Modules: :mod:`drivers.emulators.dynamixel_bus` (Dynamixel protocol 2.0 servos on a pty).
"""
