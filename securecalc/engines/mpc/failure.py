"""The worker's internal failure, reported to the node as ``("failed", kind, message, peer)``.

The peers learn only the kind, as the ABORT code ``frames.ABORT_CODES[kind]``.
"""

from __future__ import annotations

KINDS = ("party_lost", "timeout", "input", "config", "protocol", "aborted", "internal")


class Failure(Exception):
    """The job failed; ``kind`` is one of :data:`KINDS`, ``peer`` the party to blame, if any."""

    def __init__(self, kind: str, message: str, peer: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.peer = peer
