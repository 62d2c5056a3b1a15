"""Adapters that serve published vision-language-action checkpoints through :class:`Policy`.

Two families, each a registered policy type that ``load_policy(dir)`` loads from a local
directory (never a hub):

- ``openvla_tokens`` (:mod:`.openvla`): a Llava VLM that decodes one action as
  ``action_dim`` tokens from the last 256 vocabulary ids (OpenVLA style);
- ``flow_vla`` (:mod:`.flow_vla`): a Llava VLM as context encoder plus a flow-matching action
  expert that integrates an action chunk from noise (pi0 / SmolVLA style).

The directory layout is in :mod:`.layout`; :mod:`.openvla_build` and :mod:`.flow_build` write
tiny random checkpoints of both kinds. See docs/vla_adapters.md.
"""

from robot_learning.policies.adapters.action_bins import ActionNormStats
from robot_learning.policies.adapters.flow_build import build_tiny_flow_vla
from robot_learning.policies.adapters.flow_vla import FlowVLAPolicy, load_flow_vla
from robot_learning.policies.adapters.openvla import OpenVLATokenPolicy, load_openvla_tokens
from robot_learning.policies.adapters.openvla_build import build_tiny_openvla

__all__ = [
    "ActionNormStats",
    "FlowVLAPolicy",
    "OpenVLATokenPolicy",
    "build_tiny_flow_vla",
    "build_tiny_openvla",
    "load_flow_vla",
    "load_openvla_tokens",
]
