"""Joint-position arm drivers behind :class:`drivers.interfaces.Arm`.

``sim`` (the MuJoCo UR5e), ``ur`` (Universal Robots over RTDE, servoJ streaming with waypoint
interpolation) and ``dynamixel`` (a protocol 2.0 follower arm). Modules are imported by name
through :mod:`drivers.registry`, so a missing vendor package only affects its own driver.
"""
