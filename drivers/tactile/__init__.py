"""Tactile sensor drivers behind :class:`drivers.interfaces.TactileSensor`.

Modules (import the one you need; vendor libraries are imported there, not here, so a missing
``opencv`` or ``pyserial`` only affects the driver that needs it):

* :mod:`drivers.tactile.uvc`: camera-based gel sensors over UVC (GelSight Mini, DIGIT) read with
  OpenCV: crop, resize, no-contact reference frame and difference image.
* :mod:`drivers.tactile.anyskin`: AnySkin / ReSkin magnetometer skins streaming binary frames
  over USB serial (pyserial).
* :mod:`drivers.tactile.sim`: the MuJoCo fingertip taxel grids of a connected sim robot.
"""
