"""What a refused job may write to a node's audit log: one short record, within a quota.

A coordinator decides how large a job is and how often it sends one, so a refusal never logs
the job itself (its analyses and filters may add up to about a megabyte) but a summary of a
bounded size with the job's digest; and each coordinator may have at most
:data:`~securecalc.core.limits.REFUSALS_PER_HOUR` refusals recorded per hour. Beyond that the
node counts what it did not record and writes the count (``refusals_suppressed``) with the
next refusal it records. Admitted jobs are recorded in full, whatever the quota.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from securecalc.audit.log import AuditLog
from securecalc.core.limits import REFUSALS_PER_HOUR

#: characters kept of a refused job's id and of the reason, in its audit record
REFUSAL_CHARS = 500
#: party names a refusal record lists (then only their number)
LISTED_PARTIES = 16
WINDOW_SECONDS = 3600.0


def short_received(received: Mapping[str, Any]) -> dict[str, Any]:
    """A bounded summary of a ``study_received`` record: names cut, lists counted, the job's
    canonical digest kept, and the digest of the whole record (``record_digest``), so that it
    can still be matched with what was sent."""
    full = repr(sorted(received.items())).encode()
    out: dict[str, Any] = {key: (value[:REFUSAL_CHARS] if isinstance(value, str) else value)
                           for key, value in received.items()
                           if isinstance(value, str | int | float | type(None))}
    parties = received.get("parties") or []
    out["parties"] = [str(p)[:REFUSAL_CHARS] for p in parties[:LISTED_PARTIES]]
    out["n_parties"] = len(parties)
    out["analyses"] = len(received.get("analyses") or [])
    out["record_digest"] = hashlib.sha256(full).hexdigest()
    return out


@dataclass
class _Window:
    started: float
    recorded: int = 0
    suppressed: int = 0


class RefusalLog:
    """Short records of refused jobs, at most ``per_hour`` per coordinator per hour."""

    def __init__(self, audit: AuditLog, per_hour: int = REFUSALS_PER_HOUR.value,
                 clock: Callable[[], float] = time.monotonic):
        self.audit = audit
        self.per_hour = per_hour
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def record(self, coordinator: str, events: list[tuple[str, dict[str, Any]]]) -> bool:
        """Append ``events`` (already short) unless ``coordinator`` used its quota; whether
        they were written."""
        with self._lock:
            now = self._clock()
            window = self._windows.get(coordinator)
            if window is None or now - window.started >= WINDOW_SECONDS:
                suppressed = window.suppressed if window else 0
                window = self._windows[coordinator] = _Window(now, suppressed=suppressed)
            if window.recorded >= self.per_hour:
                window.suppressed += 1
                return False
            if window.suppressed:
                events = [("refusals_suppressed", {"coordinator": coordinator,
                                                   "count": window.suppressed,
                                                   "quota_per_hour": self.per_hour}),
                          *events]
            self.audit.append_all(events)
            window.recorded += 1
            window.suppressed = 0
            return True
