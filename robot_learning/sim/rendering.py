"""Offscreen camera rendering with one MuJoCo renderer per image size, created on first use."""

from __future__ import annotations

import mujoco
import numpy as np


class CameraRenderer:
    """Renders named cameras to uint8 RGB and uint16 millimetre depth."""

    def __init__(
        self, model: mujoco.MjModel, image_size: tuple[int, int], depth: bool = False
    ) -> None:
        self.model = model
        self.height, self.width = image_size
        self.depth_enabled = depth
        self._rgb: mujoco.Renderer | None = None
        self._depth: mujoco.Renderer | None = None

    def _make(self) -> mujoco.Renderer:
        renderer = mujoco.Renderer(self.model, self.height, self.width)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return renderer

    def rgb(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._make()
        self._rgb.update_scene(data, camera)
        return self._rgb.render()

    def depth_mm(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        if self._depth is None:
            self._depth = self._make()
            self._depth.enable_depth_rendering()
        self._depth.update_scene(data, camera)
        metres = self._depth.render()
        return np.clip(metres * 1000.0, 0, 65535).astype(np.uint16)

    def close(self) -> None:
        for r in (self._rgb, self._depth):
            if r is not None:
                r.close()
        self._rgb = self._depth = None
