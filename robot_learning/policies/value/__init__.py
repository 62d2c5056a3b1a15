"""Offline critics that rank a policy's proposed action chunks (value-guided policy selection).

:mod:`.q_network` is the critic, :mod:`.transitions` reads chunk transitions with sparse success
rewards from an episode store, :mod:`.offline_q` trains it with IQL, :mod:`.language` embeds
instructions. The wrapper policy that uses it is :mod:`robot_learning.policies.value_guided`.
"""

from robot_learning.policies.value.offline_q import IQLConfig, TrainSummary, train_q
from robot_learning.policies.value.q_network import QConfig, QFunction, load_q, save_q
from robot_learning.policies.value.transitions import (
    CriticDataError,
    Transitions,
    check_base_matches_store,
    load_transitions,
    q_config_for,
)

__all__ = [
    "CriticDataError",
    "IQLConfig",
    "QConfig",
    "QFunction",
    "TrainSummary",
    "Transitions",
    "check_base_matches_store",
    "load_q",
    "load_transitions",
    "q_config_for",
    "save_q",
    "train_q",
]
