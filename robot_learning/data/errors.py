"""Errors raised by the episode store; each names the store, what was wrong and what is valid."""

from __future__ import annotations

import errno


class StoreError(RuntimeError):
    """Base class: the store cannot do what was asked (message says why and what to do)."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No episode store at the given path."""


class StoreFormatError(StoreError):
    """The path holds something that is not an episode store of a format this package reads."""


class StoreLockedError(StoreError):
    """Another writer holds the store; a second writer would interleave episodes."""


class StoreFullError(StoreError):
    """The disk (or quota) filled up while writing; committed episodes are intact."""


class StoreReadOnlyError(StoreError):
    """A write was attempted on a store opened read-only."""


class StoreCorruptError(StoreError):
    """A chunk or array failed to decode; the message names the episode and key."""


DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_disk_full(exc: BaseException) -> bool:
    """True for 'no space left', 'quota exceeded' and 'file too large' errors."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
