"""Policy serving and robot-side control: the websocket + msgpack policy server, its client, a
remote Policy, the chunk executor and its real-time runner, the control loop, and the safety
layer that every command to an arm passes.

Why lazy re-exports: ``robot_learning.serving.client`` must import on a robot computer with only
websockets, msgpack and numpy installed, while :class:`RemotePolicy` pulls in the Policy base
class (and with it the policies package); names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robot_learning.serving.client import (
        ChunkReply,
        PolicyClient,
        ServerError,
        ServerUnavailable,
    )
    from robot_learning.serving.control_loop import PolicyControlLoop
    from robot_learning.serving.executor import ChunkExecutor, ExecutorConfig
    from robot_learning.serving.protocol import ProtocolError, pack, unpack
    from robot_learning.serving.remote_policy import RemotePolicy
    from robot_learning.serving.runner import AsyncChunkRunner
    from robot_learning.serving.safety import ArmState, SafetyConfig, SafetyLayer
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

_EXPORTS = {
    "ChunkReply": "client",
    "PolicyClient": "client",
    "ServerError": "client",
    "ServerUnavailable": "client",
    "ProtocolError": "protocol",
    "pack": "protocol",
    "unpack": "protocol",
    "RemotePolicy": "remote_policy",
    "PolicyServer": "server",
    "ServerThread": "thread",
    "ChunkExecutor": "executor",
    "ExecutorConfig": "executor",
    "AsyncChunkRunner": "runner",
    "PolicyControlLoop": "control_loop",
    "ArmState": "safety",
    "SafetyConfig": "safety",
    "SafetyLayer": "safety",
}

__all__ = [
    "ArmState",
    "AsyncChunkRunner",
    "ChunkExecutor",
    "ChunkReply",
    "ExecutorConfig",
    "PolicyClient",
    "PolicyControlLoop",
    "PolicyServer",
    "ProtocolError",
    "RemotePolicy",
    "SafetyConfig",
    "SafetyLayer",
    "ServerError",
    "ServerThread",
    "ServerUnavailable",
    "pack",
    "unpack",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
