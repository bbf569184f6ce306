"""Audit events as the three roles record them."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from securecalc.audit.chain import canonical
from securecalc.audit.log import AuditLog
from securecalc.audit.verify import check_checkpoint
from securecalc.core.limits import NOTE_CHARS
from securecalc.errors import CryptoError, ProtocolError, SecureCalcError, StorageError


def open_log(path: Path, party: str, *, key: Path | None, cert: Path | None) -> AuditLog:
    """The party's log, checked and with a torn tail moved aside (:meth:`AuditLog.recover`);
    it signs checkpoints when the party has a TLS identity."""
    log = AuditLog(path, party=party, key_pem=key.read_bytes() if key else None,
                   cert_pem=cert.read_bytes() if cert else None)
    log.recover()
    return log


def digest(value: Any) -> str:
    """A short fingerprint of released results, for the record."""
    return hashlib.sha256(canonical(value)).hexdigest()


def bounded_note(note: str, limit: int = NOTE_CHARS.value) -> str:
    """``note`` when it fits ``limit`` characters, else its start with its length and digest:
    a release report is bounded by design, never refused for its size."""
    if len(note) <= limit:
        return note
    tail = (f" ... [{len(note)} characters, sha256 "
            f"{hashlib.sha256(note.encode()).hexdigest()}]")
    return note[:max(limit - len(tail), 0)] + tail


def describe_error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, SecureCalcError):
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": "internal", "message": type(exc).__name__}


@contextmanager
def audited(log: AuditLog, job_id: str, **start: Any) -> Iterator[dict[str, Any]]:
    """Record ``job_start``; then ``job_end`` with the fields the body fills in, or
    ``job_failed`` with the error."""
    log.append("job_start", job=job_id, **start)
    end: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        yield end
    except BaseException as exc:
        log.append("job_failed", job=job_id, seconds=round(time.perf_counter() - started, 6),
                   **describe_error(exc))
        raise
    log.append("job_end", job=job_id, seconds=round(time.perf_counter() - started, 6), **end)


def signed_head(log: AuditLog) -> str:
    """This party's signed checkpoint as JSON, or "" when it cannot sign (insecure mode); a
    checkpoint the disk cannot hold raises StorageError."""
    try:
        return json.dumps(log.checkpoint())
    except StorageError:
        raise
    except SecureCalcError:
        return ""


def _pin_problem(head: Mapping[str, Any], pins: Mapping[str, str]) -> str | None:
    """Why a checkpoint's certificate does not carry the key pinned for its signer, or None
    (a certificate the study CA signed for that name with another key is not the signer's)."""
    signer = head.get("signer")
    if not isinstance(signer, str) or signer not in pins:
        return None
    from securecalc.pins import pem_pin  # cryptography: only when a pinned head arrives

    try:
        found = pem_pin(str(head.get("certificate", "")).encode())
    except CryptoError:
        return "unusable certificate"
    return None if found == pins[signer] else f"not signed with the key pinned for {signer}"


def store_heads(log: AuditLog, job_id: str, heads: Sequence[str], *, ca_pem: bytes | None,
                allowed: Sequence[str] | None = None,
                pins: Mapping[str, str] | None = None) -> int:
    """Verify other parties' checkpoints (signature, certificate from the study CA, signer
    among ``allowed`` when given, the key pinned for the signer in ``pins`` when it has one)
    and keep them in this log."""
    verified: list[tuple[str, dict[str, Any]]] = []
    for raw in heads:
        try:
            head = json.loads(raw)
        except (ValueError, RecursionError):  # json recurses once per nesting level
            raise ProtocolError("malformed checkpoint") from None
        if not isinstance(head, dict) or (allowed is not None
                                          and head.get("signer") not in allowed):
            raise ProtocolError("checkpoint of a party outside the job")
        if head.get("signer") == log.party:
            continue
        problem = check_checkpoint(head, ca_pem=ca_pem) or _pin_problem(head, pins or {})
        if problem:
            raise ProtocolError(f"checkpoint rejected: {problem}")
        # only what the signature and certificate vouch for: a coordinator relaying the
        # checkpoint could add any field (even "job") to the JSON
        verified.append(("peer_checkpoint", {"job": job_id, **{
            key: head[key] for key in ("signer", "count", "head", "signature", "certificate")}}))
    log.append_all(verified)  # one fsync for the whole set
    return len(verified)
