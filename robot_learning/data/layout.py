"""Names and encodings of the Zarr episode store, in one place.

Layout (Zarr format 3; compatible with Diffusion Policy's replay buffer for ``data/`` and
``meta/episode_ends``)::

    <store>/
      zarr.json                  root attrs["robot_learning"]: format, version, features (specs),
                                 roles, fps, robot, async streams, creation time
      data/<key>                 one array per feature, concatenated over time (axis 0)
      timestamps/<key>           float64 sensor-clock time of every row of data/<key> (seconds)
      meta/episode_ends          int64 cumulative end of each episode on the control timeline;
                                 written LAST: this write is the commit
      meta/ends/<key>            int64 cumulative ends for streams recorded at their own rate
      meta (group attrs)         "episodes": per-episode metadata; "stats": normalization stats

Control-timeline keys have one row per control step; ``async`` keys (e.g. 500 Hz joint states
beside 30 Hz cameras) have their own length and ends. Language features are per-episode strings
kept in the episode metadata, not arrays.
"""

from __future__ import annotations

from typing import Any

from zarr.codecs import BloscCodec

from robot_learning.data.codecs import ImageCodec
from robot_learning.specs import FeatureSpec

FORMAT_NAME = "robot_learning.episodes"
FORMAT_VERSION = 1
ATTRS_KEY = "robot_learning"
DATA = "data"
TIMESTAMPS = "timestamps"
META = "meta"
EPISODE_ENDS = "meta/episode_ends"
STREAM_ENDS = "meta/ends"
ENDS_FILL = -1  # an unwritten episode_ends slot; never a valid end
LOWDIM_CHUNK_ROWS = 1024
META_CHUNK_ROWS = 4096
DEFAULT_IMAGE_FORMAT = "jpeg"
DEFAULT_IMAGE_QUALITY = 90


def lowdim_compressor() -> BloscCodec:
    """blosc-zstd with byte shuffle: fast, and ~3-10x on smooth joint trajectories."""
    return BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


def is_image(spec: FeatureSpec) -> bool:
    return spec.kind in ("rgb", "depth")


def is_stored_array(spec: FeatureSpec) -> bool:
    """Language features live in episode metadata; everything else is a data array."""
    return spec.kind != "language"


def array_encoding(spec: FeatureSpec, image_format: str, image_quality: int) -> dict[str, Any]:
    """zarr ``create_array`` arguments (chunks, serializer, compressors) for one feature."""
    if spec.kind == "rgb":
        return {
            "chunks": (1, *spec.shape),
            "serializer": ImageCodec(format=image_format, quality=image_quality),
            "compressors": None,
        }
    if spec.kind == "depth":
        return {
            "chunks": (1, *spec.shape),
            "serializer": ImageCodec(format="png"),
            "compressors": None,
        }
    rows = max(1, min(LOWDIM_CHUNK_ROWS, (1 << 20) // max(1, spec.size * 8)))
    return {"chunks": (rows, *spec.shape), "compressors": lowdim_compressor()}
