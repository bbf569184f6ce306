"""Where an audit log's last record ends, and what follows it.

One rule, shared by the party that appends and by ``securecalc audit verify``: the torn tail
is the bytes after the last newline (a line an append never finished) plus the last complete
line when it is not a record (a crash between write and fsync). Everything before it must be
a valid chain; a torn tail is moved aside, a broken chain is never "repaired".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from securecalc.audit.chain import GENESIS, parse_record
from securecalc.audit.lines import line_start, read_range


@dataclass(frozen=True)
class Tail:
    """The end of the log's complete records, the last of them, and the torn bytes after."""

    end: int  # offset just after the last complete line that is kept
    last: dict[str, Any] | None  # the record ending at ``end``; None if none (or not a record)
    torn: int  # bytes after ``end``

    @property
    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the last record."""
        if self.last is None:
            return 0, GENESIS
        return int(self.last["seq"]), str(self.last["hash"])

    @property
    def intact(self) -> bool:
        """False when the line before the torn tail is not a record (the chain is broken)."""
        return self.end == 0 or self.last is not None


def read_tail(fd: int) -> Tail:
    """Find the last record of the log open as ``fd``, scanning back from its end."""
    size = os.fstat(fd).st_size
    end = line_start(fd, size)  # after the last newline: a partial line follows, if any
    last = _record_before(fd, end)
    if last is None and end > 0:  # the last complete line is not a record: torn as well
        end = line_start(fd, end - 1)
        last = _record_before(fd, end)
    return Tail(end, last, size - end)


def _record_before(fd: int, end: int) -> dict[str, Any] | None:
    """The record on the line that ends (with its newline) at ``end``."""
    if end == 0:
        return None
    return parse_record(read_range(fd, line_start(fd, end - 1), end - 1))
