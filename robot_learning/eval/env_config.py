"""The sim env a policy needs, derived from the policy's own specs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robot_learning.sim.env import CAMERA_NAMES, EnvConfig
from robot_learning.sim.randomization import check_variant

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy

RENDER_SIZE = (240, 320)  # video frames for policies without cameras (env.render())


def env_config_for(
    policy: Policy,
    task: str,
    *,
    variant: str = "default",
    max_steps: int | None = None,
    render_size: tuple[int, int] = RENDER_SIZE,
    task_options: dict[str, Any] | None = None,
) -> EnvConfig:
    """The env that gives ``policy`` its features: cameras, image size, depth, tactile, rate.

    Only known cameras are configured; a feature the env cannot make (an unknown camera, a second
    image size) is left for ``check_compatible`` to report by name.
    """
    spec = policy.observation_spec
    cameras: list[str] = []
    image_size: tuple[int, int] | None = None
    depth = False
    for name, feature in spec.items():
        for suffix, kind in (("_rgb", "rgb"), ("_depth", "depth")):
            if feature.kind != kind or not name.endswith(suffix):
                continue
            cam = name[: -len(suffix)]
            if cam not in CAMERA_NAMES:
                continue
            if cam not in cameras:
                cameras.append(cam)
            image_size = image_size or (feature.shape[0], feature.shape[1])
            depth = depth or kind == "depth"
    tactile = [f for n, f in spec.items() if n.startswith("tactile_") and f.kind == "tactile"]
    extra: dict[str, Any] = {}
    if tactile:
        extra["tactile_grid"] = (tactile[0].shape[0], tactile[0].shape[1])
    return EnvConfig(
        task=task,
        control_hz=float(policy.control_hz),
        cameras=tuple(cameras),
        image_size=image_size or render_size,
        depth=depth,
        tactile=bool(tactile),
        variant=check_variant(variant),
        max_episode_steps=max_steps,
        task_kwargs=dict(task_options or {}),
        **extra,
    )
