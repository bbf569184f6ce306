"""Exchanging signed audit heads at the end of a study.

The coordinator keeps every party's signed head in its own log and hands the whole set to
every hospital node, so that each hospital holds the others' heads: a party that later
truncates or rewrites its log is caught by anyone holding an older head.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from securecalc.audit.events import signed_head, store_heads
from securecalc.audit.log import AuditLog
from securecalc.coordinator.calls import call_all
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.errors import SecureCalcError
from securecalc.transport.channel import create_channel
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

_LOG = logging.getLogger(__name__)


def exchange_heads(config: StudyConfig, job: Job, tls: TlsFiles | None, log: AuditLog,
                   heads: Sequence[str]) -> None:
    """Record the parties' heads and deliver all of them to every node (best effort: the
    results are already released, so a failure is recorded and reported, not raised)."""
    if tls is None:  # development mode: nothing is signed
        return
    ca_pem = tls.ca.read_bytes()
    try:
        store_heads(log, job.job_id, heads, ca_pem=ca_pem)
        everything = [*heads, signed_head(log)]
        channels = {p.name: create_channel(p.address, tls=tls, expected_name=p.name)
                    for p in job.parties}
        request = node_pb2.HeadsRequest(job_id=job.job_id, checkpoint_json=everything)
        try:
            call_all({name: (lambda ch=ch: node_pb2_grpc.PartyNodeStub(ch).StoreHeads.future(
                         request, timeout=30.0)) for name, ch in channels.items()},
                     addresses={p.name: p.address for p in job.parties}, timeout=30.0)
        finally:
            for channel in channels.values():
                channel.close()
    except SecureCalcError as exc:
        log.append("heads_not_delivered", job=job.job_id, message=str(exc))
        print(f"securecalc: warning: audit heads not exchanged: {exc}", file=sys.stderr)
