"""Exchanging signed audit heads at the end of a study.

The coordinator keeps every party's signed head in its own log and hands the whole set to
every hospital node, so that each hospital holds the others' heads: a party that later
truncates or rewrites its log is caught by anyone holding an older head. With the heads go
the release outcomes: which analyses were released, partly withheld or withheld, and a
digest of each released value, which every node records in its own log.
"""

from __future__ import annotations

from typing import Any

from securecalc.audit.events import bounded_note, digest, signed_head, store_heads
from securecalc.audit.log import AuditLog
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.core.results import StudyResult
from securecalc.errors import SecureCalcError, StudyTimeout
from securecalc.transport.interface import HeadsRequest, ReleaseOutcome, StudyNetwork
from securecalc.transport.tls import TlsFiles


def release_outcomes(result: StudyResult, min_cell_count: int) -> list[ReleaseOutcome]:
    """Per analysis, what was released: withheld (no value), partly withheld (cells shown as
    ``"<k"``, or quantiles withheld, which the note names: "withheld for ...") or
    released, with the digest of the value (never the value itself). A note longer than a
    node records (a noisy histogram of hundreds of bins) is cut to its start, its length
    and its digest (:func:`bounded_note`), with the number of withheld cells first."""
    small = f"<{min_cell_count}"

    def cells(value: Any) -> tuple[int, int]:
        """(withheld, all) leaf values."""
        if isinstance(value, dict | list):
            parts = [cells(v) for v in (value.values() if isinstance(value, dict) else value)]
            return sum(p[0] for p in parts), sum(p[1] for p in parts)
        return int(value == small), 1

    out = []
    for rid, r in result.results.items():
        hidden, total = cells(r.value)
        status = ("withheld" if r.value is None and r.note and r.note.startswith("withheld")
                  else "partly withheld" if hidden or (r.note or "").startswith("withheld for")
                  else "released")
        note = r.note or (f"{hidden} cell(s) below min_cell_count ({min_cell_count}) withheld"
                          if hidden else "")
        if r.note and hidden:
            note = f"withheld {hidden} of {total} values below min_cell_count; {note}"
        out.append(ReleaseOutcome(analysis_id=rid, status=status, note=bounded_note(note),
                                  digest=digest(r.value)))
    return out


def exchange_heads(config: StudyConfig, job: Job, tls: TlsFiles | None, log: AuditLog,
                   result: StudyResult, network: StudyNetwork) -> None:
    """Record the parties' heads and deliver all of them, with what was released, to every
    node. A party that does not take them (refused, unreachable, or silent for
    ``peer_timeout_seconds``) fails the study, as in every other phase: a hospital must hold
    the others' heads and the release report. Without TLS (development mode) nothing is
    signed: only the outcomes travel."""
    try:
        everything: list[str] = []
        if tls is not None:
            store_heads(log, job.job_id, result.heads, ca_pem=tls.ca.read_bytes())
            everything = [*result.heads, signed_head(log)]
        request = HeadsRequest(job_id=job.job_id, checkpoint_json=tuple(everything),
                               outcomes=tuple(release_outcomes(result, job.min_cell_count)))
        network.store_heads(job.parties, request)
    except StudyTimeout:
        raise
    except SecureCalcError as exc:
        log.append("heads_not_delivered", job=job.job_id, message=str(exc))
        raise
