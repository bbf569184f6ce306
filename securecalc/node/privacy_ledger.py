"""A node's differential-privacy ledger: the epsilon each study has spent on its data.

A JSON-lines file, one line per charged run: ``{"study", "job", "epsilon", "time"}`` with
epsilon as an exact decimal string. :meth:`PrivacyLedger.charge` holds an exclusive lock while
it adds up what was spent, decides, and appends (fsync'ed), so concurrent studies cannot
overspend and a restart loses nothing. A run is charged *before* any computation and never
refunded: a run that fails halfway may already have released something, and a refusal by
another node cannot be told apart from a failure. A complete line that does not parse makes
every charge fail (the ledger fails closed) until an operator repairs the file.

A line must be a charge this module could have written: a study and a job (strings) and an
epsilon written as a plain decimal between 0 and what one job may spend. Anything else
(``1e400``, NaN, a negative or a non-number) is damage: :meth:`PrivacyLedger.recover`, which a
node runs at start, refuses it naming the file and the line, and changes nothing.

A charge is appended all or nothing (StorageError when the disk is full or failing, and the run
is refused). :meth:`PrivacyLedger.charge` calls its ``record`` (the node's audit record of the
charge) after deciding and before appending, under the ledger's lock: a charge is never on the
ledger without its audit record, and a failed audit write charges nothing. A last line without
its newline is a charge whose append never completed, so its run never computed: it is moved to
a quarantine file beside the ledger (see :func:`securecalc.audit.lines.quarantine`) and the
ledger goes on.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

from securecalc.audit import durable
from securecalc.audit.durable import SYSTEM, FileOps
from securecalc.audit.lines import Quarantined, line_start, quarantine, read_range
from securecalc.core.limits import ANALYSES
from securecalc.core.privacy import MAX_EPSILON, exact
from securecalc.errors import ConfigError, PolicyError

#: an epsilon as :func:`show` writes it: a plain decimal, no exponent, sign, NaN or infinity
_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,340})?")
#: the most one job can spend: every analysis at the largest epsilon
MAX_CHARGE = Fraction(repr(MAX_EPSILON)) * ANALYSES.value


def parse_entry(line: bytes) -> tuple[str, Fraction]:
    """(study, epsilon) of one ledger line; ValueError unless it is a charge as written."""
    entry = json.loads(line)
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    study, job, epsilon = entry.get("study"), entry.get("job"), entry.get("epsilon")
    if not (isinstance(study, str) and isinstance(job, str) and isinstance(epsilon, str)
            and _DECIMAL.fullmatch(epsilon)):
        raise ValueError("not a charge")
    value = Fraction(epsilon)
    if value > MAX_CHARGE:
        raise ValueError("epsilon out of range")
    return study, value


@dataclass(frozen=True)
class Charge:
    """A run's charge and the totals after it (exact)."""

    epsilon: Fraction
    study_spent: Fraction
    total_spent: Fraction


class PrivacyLedger:
    def __init__(self, path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ops: FileOps = SYSTEM):
        self.path = Path(path)
        self._clock = clock
        self._ops = ops

    def _open_locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _complete(self, fd: int) -> tuple[bytes, Quarantined | None]:
        """The ledger's complete lines, after moving a torn last line aside."""
        size = os.fstat(fd).st_size
        keep = line_start(fd, size)
        moved = None
        if keep < size:
            moved = quarantine(fd, self.path, keep, now=self._clock(), what="privacy ledger",
                               ops=self._ops)
        return read_range(fd, 0, keep), moved

    def recover(self) -> Quarantined | None:
        """Check every complete line, then move a torn last line aside, as a node does at
        start; what was moved, if any. A damaged line raises ConfigError (file and line)
        before anything is changed."""
        fd = self._open_locked()
        try:
            size = os.fstat(fd).st_size
            self._parse(read_range(fd, 0, line_start(fd, size)))
            return self._complete(fd)[1]
        finally:
            os.close(fd)

    def _entries(self, fd: int) -> list[tuple[str, Fraction]]:
        return self._parse(self._complete(fd)[0])

    def _parse(self, text: bytes) -> list[tuple[str, Fraction]]:
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(parse_entry(line))
            except (ValueError, RecursionError):
                raise ConfigError(f"line {number} is not a ledger entry; no differentially "
                                  "private study runs until the ledger is repaired",
                                  path=str(self.path)) from None
        return out

    def spent(self, study: str | None = None) -> Fraction:
        """Epsilon spent by ``study`` (by every study when None)."""
        fd = self._open_locked()
        try:
            return sum((e for s, e in self._entries(fd) if study is None or s == study),
                       Fraction(0))
        finally:
            os.close(fd)

    def by_study(self) -> dict[str, Fraction]:
        """Epsilon spent per study, in the order studies first appear."""
        fd = self._open_locked()
        try:
            out: dict[str, Fraction] = {}
            for study, epsilon in self._entries(fd):
                out[study] = out.get(study, Fraction(0)) + epsilon
            return out
        finally:
            os.close(fd)

    def charge(self, *, study: str, job_id: str, epsilon: float,
               study_budget: float | None, total_budget: float | None,
               record: Callable[[Charge], None] = lambda charge: None) -> Charge:
        """Record that ``job_id`` of ``study`` spends ``epsilon``, or refuse (PolicyError)
        when that would exceed ``study_budget`` for the study or ``total_budget`` over all
        studies. Nothing is recorded on a refusal. ``record`` (the audit record) runs before
        the ledger line is appended; when it raises, nothing is charged."""
        cost = exact(epsilon)
        fd = self._open_locked()
        try:
            entries = self._entries(fd)
            study_spent = sum((e for s, e in entries if s == study), Fraction(0))
            total_spent = sum((e for _, e in entries), Fraction(0))
            if study_budget is not None and study_spent + cost > exact(study_budget):
                raise PolicyError(
                    f"study {study!r} would spend epsilon {show(cost)} on top of the "
                    f"{show(study_spent)} it has spent; this node allows {study_budget:g} "
                    "per study (policy.dp_budget)")
            if total_budget is not None and total_spent + cost > exact(total_budget):
                raise PolicyError(
                    f"study {study!r} would spend epsilon {show(cost)}; the studies on this "
                    f"node have spent {show(total_spent)} of the node's total "
                    f"{total_budget:g} (policy.dp_total_budget)")
            charge = Charge(cost, study_spent + cost, total_spent + cost)
            record(charge)
            line = json.dumps({"study": study, "job": job_id, "epsilon": show(cost),
                               "time": self._clock().isoformat()}, sort_keys=True)
            durable.append(fd, (line + "\n").encode(), path=self.path, what="privacy ledger",
                           ops=self._ops)
        finally:
            os.close(fd)
        return charge


def show(value: Fraction) -> str:
    """An exact decimal when there is one (epsilons are decimals), else the fraction."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return str(value)
    digits = max(twos, fives)
    scaled = value * 10**digits
    text = f"{scaled.numerator:0{digits + 1}d}"
    return f"{text[:-digits]}.{text[-digits:]}"
