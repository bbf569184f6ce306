"""Appending to an audit log, and signing its head.

Each event is written and fsync'ed before :meth:`AuditLog.append` returns, so an event that
was acknowledged survives a crash. A checkpoint (record count and head hash) is signed with
the party's TLS key, appended to the log itself, and handed to the other parties.
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

from securecalc.audit.chain import CHECKPOINT, GENESIS, checkpoint_message, make_record
from securecalc.errors import ConfigError

#: bytes read from the end of the log to find its last record (records are a few KiB at most)
_TAIL_BYTES = 64 * 1024


class AuditLog:
    """An append-only, hash-chained JSON-lines file owned by one party."""

    def __init__(self, path: Path, *, party: str, key_pem: bytes | None = None,
                 cert_pem: bytes | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.path = Path(path)
        self.party = party
        self._key = (serialization.load_pem_private_key(key_pem, password=None)
                     if key_pem else None)
        self._cert_pem = cert_pem
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _ = self.head  # fail early on a log whose tail is not a record

    def _tail(self, fd: int) -> tuple[int, str]:
        """Sequence number and hash of the last record (the file is locked by the caller)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        window = min(size, _TAIL_BYTES)
        os.lseek(fd, size - window, os.SEEK_SET)
        lines = [ln for ln in os.read(fd, window).splitlines() if ln.strip()]
        try:
            record = json.loads(lines[-1])
            return int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError, IndexError):
            raise ConfigError("the last line is not an audit record; run "
                              "`securecalc audit verify` on it", path=str(self.path)) from None

    def _locked(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # other threads and processes appending to this log
        return fd

    @property
    def head(self) -> tuple[int, str]:
        """(record count, hash of the last record)."""
        with self._lock:
            fd = self._locked()
            try:
                return self._tail(fd)
            finally:
                os.close(fd)

    def append(self, event: str, **data: Any) -> dict[str, Any]:
        """Write one event durably (fsync) and return its record."""
        return self.append_all([(event, data)])[0]

    def append_all(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Write several events in order, durably with one fsync, and return their records."""
        with self._lock:
            fd = self._locked()
            try:
                seq, head = self._tail(fd)
                records, lines = [], []
                for event, data in events:
                    seq += 1
                    record = make_record(seq, self._clock().isoformat(), event, dict(data),
                                         head)
                    head = record["hash"]
                    records.append(record)
                    lines.append(json.dumps(record, sort_keys=True) + "\n")
                if lines:
                    os.write(fd, "".join(lines).encode())
                    os.fsync(fd)
            finally:
                os.close(fd)  # releases the lock
            return records

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


def event_data(**values: Any) -> Mapping[str, Any]:
    """Plain-JSON event fields (drops None)."""
    return {k: v for k, v in values.items() if v is not None}
