"""Camera drivers behind :class:`drivers.interfaces.Camera`.

Modules (imported lazily through ``drivers.registry``, so a missing vendor package only matters
for the driver that needs it): :mod:`drivers.cameras.realsense` (Intel RealSense via
pyrealsense2), :mod:`drivers.cameras.opencv` (UVC webcams, video files and streams via OpenCV),
:mod:`drivers.cameras.stream` (dropped-frame counting and the errors both share).
"""
