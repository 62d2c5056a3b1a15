"""Bytes on disk under a directory: one scan used by the store, ``info``, exports and ``collect``.

Why ``os.scandir``: a store holds one file per camera frame (tens of thousands); scandir reads
sizes without building a ``Path`` per file, and a file removed mid-scan (a concurrent discard)
is skipped instead of failing the scan.
"""

from __future__ import annotations

import os
from pathlib import Path


def disk_usage(root: str | Path) -> int:
    """Bytes in regular files under ``root`` (os.scandir: no per-file Path objects)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:  # removed by a concurrent truncate
                        continue
        except FileNotFoundError:
            continue
    return total


__all__ = ["disk_usage"]
