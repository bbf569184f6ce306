"""Checking an audit log: its chain, its signed checkpoints, and heads other parties hold."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from securecalc.audit.chain import CHECKPOINT, Problem, checkpoint_message, verify_chain
from securecalc.audit.lines import iter_lines
from securecalc.audit.tail import read_tail
from securecalc.errors import ConfigError


@dataclass
class Report:
    records: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    checkpoints: int = 0
    torn: int = 0  # bytes after the last complete record, which a party moves aside at start

    @property
    def ok(self) -> bool:
        """The chain and signatures are intact (a torn tail aside)."""
        return not self.problems

    def torn_message(self) -> str:
        return (f"torn tail: {self.torn} bytes after record {len(self.records)}; the node will "
                "quarantine it at start")


def check_checkpoint(checkpoint: dict[str, Any], *, ca_pem: bytes | None) -> str | None:
    """None when the signature is valid (and the certificate names the signer and comes from
    the CA, if given); otherwise what is wrong."""
    fields = [checkpoint.get(key) for key in ("signer", "count", "head", "signature",
                                                "certificate")]
    signer, count, head, signature_b64, pem = fields
    if not (isinstance(count, int) and not isinstance(count, bool) and isinstance(signer, str)
            and isinstance(head, str) and isinstance(signature_b64, str) and isinstance(pem, str)):
        return "malformed checkpoint"  # a peer's JSON may hold any type in any field
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        signature = base64.b64decode(signature_b64)
        message = checkpoint_message(signer, count, head)
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return "certificate names no signer"
    except (ValueError, TypeError):  # also a certificate with malformed extensions
        return "malformed checkpoint"
    if signer not in names:
        return f"certificate does not name the signer {signer!r}"
    if ca_pem is not None:
        ca = x509.load_pem_x509_certificate(ca_pem)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return "certificate was not issued by the study CA"
    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unsupported key type"
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return "unsupported key type"
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "bad signature"
    return None


def verify_log(path: Path, *, ca: Path | None = None,
               heads: Sequence[dict[str, Any]] = ()) -> Report:
    """Verify the chain and checkpoints of ``path``; ``heads`` are checkpoints of this log
    held by other parties (they reveal a truncated or rewritten tail)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        tail = read_tail(fd)  # the same rule a party applies at start
        records, problems = verify_chain(iter_lines(fd, tail.end))
    finally:
        os.close(fd)
    ca_pem = ca.read_bytes() if ca else None
    report = Report(records, problems, torn=tail.torn)
    by_seq = {r.get("seq"): r for r in records}
    for number, record in enumerate(records, start=1):
        if record.get("event") != CHECKPOINT:
            continue
        report.checkpoints += 1
        data = record.get("data", {})
        if data.get("signer") is None:
            continue
        problem = check_checkpoint(data, ca_pem=ca_pem)
        if problem:
            report.problems.append(Problem(number, f"checkpoint: {problem}"))
        elif data.get("head") != by_seq.get(data.get("count"), {}).get("hash") and \
                data.get("count") != 0:
            report.problems.append(Problem(number, "checkpoint does not match the record it "
                                                   "names (records before it were changed)"))
    for held in heads:
        problem = check_checkpoint(held, ca_pem=ca_pem)
        count = held.get("count")
        if problem:
            report.problems.append(Problem(0, f"held checkpoint: {problem}"))
        elif count not in by_seq:
            report.problems.append(Problem(0, f"the log ends at record {len(records)} but "
                                              f"{held.get('signer')} signed a head at record "
                                              f"{count}: the log was truncated"))
        elif by_seq[count]["hash"] != held.get("head"):
            report.problems.append(Problem(0, f"record {count} differs from the head "
                                              f"{held.get('signer')} signed"))
    return report


def load_heads(paths: Sequence[Path]) -> list[dict[str, Any]]:
    heads = []
    for path in paths:
        try:
            heads.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            raise ConfigError("not a checkpoint file", path=str(path)) from None
    return heads


def show(records: Sequence[dict[str, Any]]) -> str:
    """One readable line per record."""
    lines = []
    for record in records:
        data = dict(record.get("data", {}))
        if record.get("event") in (CHECKPOINT, "peer_checkpoint"):
            data = {k: data[k] for k in ("job", "signer", "count") if k in data}
            data["head"] = str(record.get("data", {}).get("head", ""))[:12]
        fields = " ".join(f"{k}={json.dumps(v)}" for k, v in data.items())
        lines.append(f"{record.get('seq', '?'):>5}  {record.get('time', '?')}  "
                     f"{record.get('event', '?'):<16} {fields}")
    return "\n".join(lines)
