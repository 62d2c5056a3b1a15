"""Zarr episode datasets: the store, its image codecs, the window sampler and converters.

Importing this package registers the zarr image codec, so any store it wrote can be opened.
"""

from robot_learning.data.codecs import CODEC_ID, ImageCodec
from robot_learning.data.errors import (
    StoreCorruptError,
    StoreError,
    StoreFormatError,
    StoreFullError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from robot_learning.data.store import EpisodeStore, RepairReport
from robot_learning.data.writer import EpisodeWriter

__all__ = [
    "CODEC_ID",
    "EpisodeStore",
    "EpisodeWriter",
    "ImageCodec",
    "RepairReport",
    "StoreCorruptError",
    "StoreError",
    "StoreFormatError",
    "StoreFullError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
]
