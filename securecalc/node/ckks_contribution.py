"""A node's part in a CKKS job: encrypt its packed statistics and send them to the compute node.

The coordinator never receives these ciphertexts; only the compute node does, and it can
return nothing but the sum over every site.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.local import local_contributions
from securecalc.engines.ckks.adapter import site_vector
from securecalc.engines.ckks.encrypt import encrypt_packed
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import ProtocolError
from securecalc.node.datastore import DataStore
from securecalc.signing import sign_submission
from securecalc.transport.interface import ComputeSubmitter, Submission


@dataclass(frozen=True)
class CkksOutcome:
    bytes_sent: int
    ciphertexts: int
    local_seconds: float
    encrypt_seconds: float


def contribute(job: Job, store: DataStore, states: Mapping[str, Any], *, me: str,
               public_context: bytes, layout: Layout, compute: Party,
               submitter: ComputeSubmitter, key_pem: bytes | None,
               timeout: float, on_cancel: Callable[[Callable[[], None]], bool]) -> CkksOutcome:
    """Encrypt this node's part of ``job`` and submit it to the compute node, signed with
    ``key_pem`` (None: insecure mode, unsigned). ``on_cancel`` registers a callback for when
    the coordinator's call ends (False if it already ended): the submission is then
    cancelled too."""
    started = time.perf_counter()
    with store.data_for(job) as data:
        values = site_vector(local_contributions(job, data, "ckks"), states)
    if len(values) != layout.n_values:
        raise ProtocolError("job layout does not match its analyses")
    local_done = time.perf_counter()
    ciphertexts = encrypt_packed(public_context, values, layout)
    encrypted = time.perf_counter()
    signature = (sign_submission(key_pem, job.job_id, me, ciphertexts)
                 if key_pem is not None else b"")
    submitter.submit(compute, Submission(job.job_id, tuple(ciphertexts), signature),
                     timeout=timeout, on_cancel=on_cancel)
    return CkksOutcome(bytes_sent=sum(len(c) for c in ciphertexts),
                       ciphertexts=len(ciphertexts), local_seconds=local_done - started,
                       encrypt_seconds=encrypted - local_done)
