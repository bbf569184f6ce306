"""All-or-nothing appends to the files a party must never lose: its audit log and its ledger.

An append either lands completely and fsync'ed, or not at all: short writes are resumed, and
when a write or fsync fails (ENOSPC, EIO, any OSError) the file is cut back to its length
before the append and a :class:`~securecalc.errors.StorageError` is raised. The operating
system calls go through :class:`FileOps`, so that tests can make them fail; the file itself is
always real.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from securecalc.errors import StorageError

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileOps:
    """The system calls an append makes (replaceable in tests)."""

    write: Callable[[int, bytes | memoryview], int] = os.write
    fsync: Callable[[int], None] = os.fsync
    ftruncate: Callable[[int, int], None] = os.ftruncate


SYSTEM = FileOps()


def append(fd: int, data: bytes, *, path: Path, what: str, ops: FileOps = SYSTEM) -> None:
    """Append ``data`` to the locked, O_APPEND file ``fd`` and fsync it, or leave the file as
    it was and raise StorageError (``what`` names the file to a reader: "audit log")."""
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            written = ops.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "write made no progress")
            view = view[written:]
        ops.fsync(fd)
    except OSError as exc:
        _undo(fd, start, path, ops)
        raise _failure(exc, path, what) from exc


def write_new(path: Path, data: bytes, *, what: str, ops: FileOps = SYSTEM) -> None:
    """Create ``path`` (it must not exist) holding ``data``, fsync'ed with its folder, or
    raise StorageError leaving no file behind."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    except OSError as exc:
        raise _failure(exc, path, what) from exc
    try:
        append(fd, data, path=path, what=what, ops=ops)
    except StorageError:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        ops.fsync(folder)  # the new name survives a crash
    except OSError as exc:
        raise _failure(exc, path, what) from exc
    finally:
        os.close(folder)


def truncate(fd: int, length: int, *, path: Path, what: str, ops: FileOps = SYSTEM) -> None:
    """Cut the file back to ``length`` bytes, durably, or raise StorageError."""
    try:
        ops.ftruncate(fd, length)
        ops.fsync(fd)
    except OSError as exc:
        raise _failure(exc, path, what) from exc


def _undo(fd: int, length: int, path: Path, ops: FileOps) -> None:
    try:
        ops.ftruncate(fd, length)
        ops.fsync(fd)
    except OSError as exc:  # the next append or start finds a torn tail and quarantines it
        _LOG.critical("%s: could not cut a failed append back to %d bytes (%s); the torn "
                      "tail will be quarantined when the file is next used", path, length,
                      exc.strerror or exc)


def _failure(exc: OSError, path: Path, what: str) -> StorageError:
    reason = ("the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
              else f"the disk is failing ({exc.strerror or exc})")
    _LOG.error("%s: cannot write the %s: %s; nothing was recorded", path, what, reason)
    return StorageError(f"the {what} cannot be written: {reason}; nothing was recorded, and "
                        "nothing that needs it runs until an operator frees space or "
                        "replaces the disk")
