"""Reading JSON-lines files of any size, and moving a torn tail aside.

Lines are found by scanning for newlines, backwards from the end in growing windows or
forwards in chunks, so no line length is assumed. A torn tail (bytes a crash or a failed
append left after the last complete line) is copied to a quarantine file beside the file,
``<name>.torn-<UTC time>``, before the file is cut back; nothing is ever thrown away.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from securecalc.audit.durable import SYSTEM, FileOps, truncate, write_new

_LOG = logging.getLogger(__name__)

_WINDOW = 64 * 1024
_CHUNK = 1 << 20


def line_start(fd: int, end: int) -> int:
    """Offset just after the last newline before ``end`` (0 when there is none)."""
    window = _WINDOW
    stop = end
    while stop > 0:
        start = max(0, stop - window)
        found = os.pread(fd, stop - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        stop = start
        window = min(2 * window, 64 * _CHUNK)
    return 0


def read_range(fd: int, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of the file."""
    chunks = []
    while start < end:
        chunk = os.pread(fd, min(_CHUNK, end - start), start)
        if not chunk:
            break
        chunks.append(chunk)
        start += len(chunk)
    return b"".join(chunks)


def iter_lines(fd: int, end: int) -> Iterator[bytes]:
    """The newline-terminated lines before offset ``end`` (which ends a line), without their
    newlines."""
    offset, pending = 0, b""
    while offset < end:
        chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        *complete, pending = (pending + chunk).split(b"\n")
        yield from complete
    if pending:
        yield pending


@dataclass(frozen=True)
class Quarantined:
    """Torn bytes moved aside: where to, how many, and their SHA-256."""

    path: Path
    size: int
    sha256: str

    def describe(self) -> dict[str, str | int]:
        return {"quarantine": str(self.path), "torn_bytes": self.size, "sha256": self.sha256}


def quarantine(fd: int, path: Path, keep: int, *, now: datetime, what: str,
               ops: FileOps = SYSTEM) -> Quarantined:
    """Move the bytes of the locked file ``fd`` after offset ``keep`` to a new file beside
    ``path``, then cut the file back to ``keep`` bytes."""
    torn = read_range(fd, keep, os.fstat(fd).st_size)
    aside = path.with_name(f"{path.name}.torn-{now.strftime('%Y%m%dT%H%M%S.%fZ')}")
    write_new(aside, torn, what=f"quarantine file of the {what}", ops=ops)
    truncate(fd, keep, path=path, what=what, ops=ops)
    _LOG.warning("%s: the %s ended in %d torn bytes (an append that never completed); they "
                 "were moved to %s and the %s goes on from its last complete line", path, what,
                 len(torn), aside, what)
    return Quarantined(aside, len(torn), hashlib.sha256(torn).hexdigest())
