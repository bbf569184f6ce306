"""A node's part in a CKKS job: encrypt its packed statistics and send them to the compute node.

The coordinator never receives these ciphertexts; only the compute node does, and it can
return nothing but the sum over every site.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from securecalc.core.job import Job
from securecalc.engines.ckks.encrypt import encrypt_packed
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import ProtocolError
from securecalc.node.contribution import ckks_inputs, contributions
from securecalc.node.datastore import DataStore
from securecalc.signing import sign_submission
from securecalc.transport import chunks
from securecalc.transport.channel import create_channel
from securecalc.transport.errors import raise_from_rpc_error
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc
from securecalc.transport.tls import TlsFiles


@dataclass(frozen=True)
class CkksOutcome:
    bytes_sent: int
    ciphertexts: int
    local_seconds: float
    encrypt_seconds: float


def contribute(job: Job, store: DataStore, states: Mapping[str, Any], *, me: str,
               public_context: bytes, layout: Layout,
               compute_name: str, compute_address: str, tls: TlsFiles | None,
               timeout: float, on_cancel: Callable[[Callable[[], None]], bool]) -> CkksOutcome:
    """Encrypt this node's part of ``job`` and submit it to the compute node. ``on_cancel``
    registers a callback for when the coordinator's call ends (``context.add_callback``;
    False if it already ended): the submission is then cancelled too."""
    started = time.perf_counter()
    values = ckks_inputs(contributions(job, store.table_for(job), "ckks"), states)
    if len(values) != layout.n_values:
        raise ProtocolError("job layout does not match its analyses")
    local_done = time.perf_counter()
    ciphertexts = encrypt_packed(public_context, values, layout)
    encrypted = time.perf_counter()

    signature = (sign_submission(tls.key.read_bytes(), job.job_id, me, ciphertexts)
                 if tls is not None else b"")

    def stream() -> Iterator[compute_pb2.CiphertextChunk]:
        for index, ciphertext in enumerate(ciphertexts):
            for piece in chunks.split(ciphertext):
                yield compute_pb2.CiphertextChunk(job_id=job.job_id, index=index, data=piece)
        if signature:
            yield compute_pb2.CiphertextChunk(job_id=job.job_id, signature=signature)

    with create_channel(compute_address, tls=tls, expected_name=compute_name,
                        own_name=me) as channel:
        call = compute_pb2_grpc.ComputeNodeStub(channel).Submit.future(stream(), timeout=timeout)
        if not on_cancel(call.cancel):
            call.cancel()
        try:
            call.result()
        except grpc.RpcError as exc:
            raise_from_rpc_error(exc, party=compute_name, address=compute_address,
                                 timeout=timeout)
    return CkksOutcome(bytes_sent=sum(len(c) for c in ciphertexts),
                       ciphertexts=len(ciphertexts), local_seconds=local_done - started,
                       encrypt_seconds=encrypted - local_done)
