"""Appending to an audit log, and signing its head.

Each event is written and fsync'ed before :meth:`AuditLog.append` returns, so an event that
was acknowledged survives a crash; an append that fails (disk full or failing) is undone and
raises StorageError. A torn tail left by a crash is moved aside and recorded as
``log_repaired``, at start (:meth:`AuditLog.recover`) or by the next append. A checkpoint
(record count and head hash) is signed with the party's TLS key, appended to the log itself,
and handed to the other parties.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securecalc.audit import durable
from securecalc.audit.chain import CHECKPOINT, ChainCheck, checkpoint_message, make_record
from securecalc.audit.durable import SYSTEM, FileOps
from securecalc.audit.lines import Quarantined, iter_lines, quarantine
from securecalc.audit.tail import Tail, read_tail
from securecalc.errors import ConfigError

REPAIRED = "log_repaired"


class AuditLog:
    """An append-only, hash-chained JSON-lines file owned by one party."""

    def __init__(self, path: Path, *, party: str, key_pem: bytes | None = None,
                 cert_pem: bytes | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ops: FileOps = SYSTEM):
        self.path = Path(path)
        self.party = party
        self._key = (serialization.load_pem_private_key(key_pem, password=None)
                     if key_pem else None)
        self._cert_pem = cert_pem
        self._clock = clock
        self._ops = ops
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _locked(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # other threads and processes appending to this log
        return fd

    def _broken(self, problem: str) -> ConfigError:
        return ConfigError(f"the audit log's chain is broken ({problem}); nothing more is "
                           f"appended to it: run `securecalc audit verify {self.path}`",
                           path=str(self.path))

    @property
    def head(self) -> tuple[int, str]:
        """(record count, hash of the last record)."""
        with self._lock:
            fd = self._locked()
            try:
                tail = read_tail(fd)
            finally:
                os.close(fd)
        if not tail.intact:
            raise self._broken("the line before its last is not an audit record")
        return tail.head

    def recover(self) -> Quarantined | None:
        """Check the whole chain, as a party does at start, and move a torn tail aside
        (recorded as ``log_repaired``); a broken chain raises ConfigError."""
        with self._lock:
            fd = self._locked()
            try:
                tail = read_tail(fd)
                check = ChainCheck()
                for number, line in enumerate(iter_lines(fd, tail.end), start=1):
                    problems = check.feed(number, line)[1]
                    if problems:
                        raise self._broken(str(problems[0]))
                return self._write(fd, tail, [])[1]
            finally:
                os.close(fd)

    def append(self, event: str, **data: Any) -> dict[str, Any]:
        """Write one event durably (fsync) and return its record."""
        return self.append_all([(event, data)])[0]

    def append_all(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Write several events in order, all or none, durably with one fsync, and return
        their records; StorageError when the disk is full or failing."""
        with self._lock:
            fd = self._locked()
            try:
                return self._write(fd, read_tail(fd), events)[0]
            finally:
                os.close(fd)  # releases the lock

    def _write(self, fd: int, tail: Tail, events: Sequence[tuple[str, Mapping[str, Any]]]
               ) -> tuple[list[dict[str, Any]], Quarantined | None]:
        """Append after ``tail`` (the file is locked), moving a torn tail aside first."""
        if not tail.intact:
            raise self._broken("the line before its last is not an audit record")
        seq, head = tail.head
        moved = None
        if tail.torn:
            moved = quarantine(fd, self.path, tail.end, now=self._clock(), what="audit log",
                               ops=self._ops)
            events = [(REPAIRED, {**moved.describe(), "after_record": seq}), *events]
        records, lines = [], []
        for event, data in events:
            seq += 1
            record = make_record(seq, self._clock().isoformat(), event, dict(data), head)
            head = record["hash"]
            records.append(record)
            lines.append(json.dumps(record, sort_keys=True) + "\n")
        if lines:
            durable.append(fd, "".join(lines).encode(), path=self.path, what="audit log",
                           ops=self._ops)
        return records[1 if moved else 0:], moved

    def checkpoint(self) -> dict[str, Any]:
        """Sign the current head, append the checkpoint, and return it for the other parties."""
        if self._key is None or self._cert_pem is None:
            raise ConfigError(f"audit log of {self.party} has no signing key")
        count, head = self.head
        assert isinstance(self._key, ec.EllipticCurvePrivateKey)
        signature = self._key.sign(checkpoint_message(self.party, count, head),
                                   ec.ECDSA(hashes.SHA256()))
        checkpoint = {"signer": self.party, "count": count, "head": head,
                      "signature": base64.b64encode(signature).decode(),
                      "certificate": self._cert_pem.decode()}
        self.append(CHECKPOINT, **checkpoint)
        return checkpoint
