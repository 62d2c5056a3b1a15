"""drivers: hardware behind interfaces (robots, cameras, arms, tactile sensors, teleop devices).

Each device kind has an ABC in :mod:`drivers.interfaces`, a MuJoCo sim backend and, for hardware,
a vendor-library driver that is imported lazily by name through :mod:`drivers.registry`, so this
package imports without any vendor SDK installed.
"""

from drivers.interfaces import (
    Arm,
    Camera,
    Device,
    DeviceNotConnectedError,
    JointState,
    Robot,
    TactileSensor,
    TeleopDevice,
    TeleopEvent,
)

__all__ = [
    "Arm",
    "Camera",
    "Device",
    "DeviceNotConnectedError",
    "JointState",
    "Robot",
    "TactileSensor",
    "TeleopDevice",
    "TeleopEvent",
]
