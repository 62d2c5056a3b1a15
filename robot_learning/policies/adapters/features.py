"""Which observation features an adapter reads: camera images, one instruction, low-dim state.

Why checked up front: a published VLA was trained on a fixed set of inputs. A spec that asks the
robot for a feature the model never reads (or offers a kind it cannot read, such as depth) is
refused when the checkpoint is built or loaded, naming the feature, instead of being silently
ignored at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_learning.policies.checkpoint import CheckpointError
from robot_learning.specs import SpecDict


@dataclass(frozen=True)
class AdapterFeatures:
    """Names of the features an adapter consumes, in spec order."""

    images: tuple[str, ...]
    language: str
    state: tuple[str, ...]

    @staticmethod
    def from_spec(
        spec: SpecDict, *, policy: str, max_images: int, allow_state: bool
    ) -> AdapterFeatures:
        """Split ``spec``; raise :class:`CheckpointError` naming a feature the model cannot use."""
        images, language, state = [], [], []
        for name, feature in spec.items():
            if feature.kind == "rgb":
                images.append(name)
            elif feature.kind == "language":
                language.append(name)
            elif feature.kind == "lowdim" and allow_state:
                state.append(name)
            else:
                raise CheckpointError(
                    f"{policy}: observation {name!r} has kind {feature.kind!r}, which this "
                    f"adapter does not read (it reads rgb, language"
                    f"{', lowdim' if allow_state else ''})"
                )
        if not images or len(images) > max_images:
            raise CheckpointError(
                f"{policy}: needs 1 to {max_images} rgb observation(s), the spec has "
                f"{len(images)}: {images}"
            )
        if len(language) != 1:
            raise CheckpointError(
                f"{policy}: needs exactly one language observation (the instruction), the spec "
                f"has {len(language)}: {language}"
            )
        return AdapterFeatures(tuple(images), language[0], tuple(state))

    def state_dim(self, spec: SpecDict) -> int:
        return sum(spec[name].size for name in self.state)
