"""Appending to an audit log, and signing its head.

Each event is written and fsync'ed before :meth:`AuditLog.append` returns, so an event that
was acknowledged survives a crash. A checkpoint (record count and head hash) is signed with
the party's TLS key, appended to the log itself, and handed to the other parties.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securecalc.audit.chain import CHECKPOINT, GENESIS, checkpoint_message, make_record
from securecalc.errors import ConfigError


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
        self._seq, self._head = self._resume()

    def _resume(self) -> tuple[int, str]:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return 0, GENESIS
        last = None
        with self.path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    last = line
        if last is None:
            return 0, GENESIS
        try:
            record = json.loads(last)
            return int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError("the last line is not an audit record; run "
                              "`securecalc audit verify` on it", path=str(self.path)) from None

    @property
    def head(self) -> tuple[int, str]:
        with self._lock:
            return self._seq, self._head

    def append(self, event: str, **data: Any) -> dict[str, Any]:
        """Write one event durably (fsync) and return its record."""
        with self._lock:
            record = make_record(self._seq + 1, self._clock().isoformat(), event, data,
                                 self._head)
            line = json.dumps(record, sort_keys=True) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq, self._head = record["seq"], record["hash"]
            return record

    def checkpoint(self) -> dict[str, Any]:
        """Sign the current head, append the checkpoint, and return it for the other parties."""
        if self._key is None or self._cert_pem is None:
            raise ConfigError(f"audit log of {self.party} has no signing key")
        with self._lock:
            count, head = self._seq, self._head
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
