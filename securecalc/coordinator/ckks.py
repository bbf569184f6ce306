"""Running a job with the CKKS engine.

The coordinator makes a fresh key for the job, gives the hospitals the public context only,
gives the compute node a context with parameters and no key, and receives nothing but the
encrypted sum over all sites, which it decrypts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from securecalc.coordinator.calls import call_all
from securecalc.core.config import StudyConfig
from securecalc.core.encoding import ckks_decode
from securecalc.core.job import Job
from securecalc.core.results import AnalysisResult, Cost, StudyResult
from securecalc.core.statistics import finish, layout_of
from securecalc.engines.ckks.context import KeyHolder
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.errors import ProtocolError
from securecalc.node.contribution import ckks_width
from securecalc.transport import chunks
from securecalc.transport.channel import create_channel
from securecalc.transport.codec import ckks_params_to_proto, job_to_proto
from securecalc.transport.errors import raise_from_rpc_error
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc, node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

MAX_SUM_BYTES = 64 * 1024 * 1024


def run_ckks(config: StudyConfig, job: Job, tls: TlsFiles | None,
             params: CkksParams | None = None) -> StudyResult:
    assert config.compute is not None
    started = time.perf_counter()
    params = params or CkksParams()
    holder = KeyHolder.create(params)
    layout = Layout(n_values=ckks_width(job), params=params)
    public_context = holder.public_context_bytes()
    params_context = holder.params_context_bytes()
    own = "coordinator" if tls is None else None
    compute = config.compute
    keys_ready = time.perf_counter()

    with create_channel(compute.address, tls=tls, expected_name=compute.name,
                        own_name=own) as compute_channel:
        compute_stub = compute_pb2_grpc.ComputeNodeStub(compute_channel)
        try:
            compute_stub.OpenJob(compute_pb2.OpenJobRequest(
                job_id=job.job_id, sites=list(job.party_names()), n_values=layout.n_values,
                params=ckks_params_to_proto(params), params_context=params_context),
                timeout=min(30.0, config.timeout_seconds))
        except grpc.RpcError as exc:
            raise_from_rpc_error(exc, party=compute.name, address=compute.address,
                                 timeout=config.timeout_seconds)

        spec = node_pb2.CkksJobSpec(spec=job_to_proto(job), compute_address=compute.address,
                                    compute_name=compute.name,
                                    params=ckks_params_to_proto(params),
                                    n_values=layout.n_values)

        def request_stream() -> Iterator[node_pb2.CkksJobChunk]:
            yield node_pb2.CkksJobChunk(spec=spec)
            for piece in chunks.split(public_context):
                yield node_pb2.CkksJobChunk(context_chunk=piece)

        node_channels = {p.name: create_channel(p.address, tls=tls, expected_name=p.name,
                                                own_name=own) for p in job.parties}
        try:
            calls = {name: (lambda ch=ch: node_pb2_grpc.PartyNodeStub(ch).RunCkks.future(
                         request_stream(), timeout=config.timeout_seconds))
                     for name, ch in node_channels.items()}
            replies: dict[str, node_pb2.CkksJobReply] = call_all(
                calls, addresses={p.name: p.address for p in job.parties},
                timeout=config.timeout_seconds)
        finally:
            for channel in node_channels.values():
                channel.close()
        submitted = time.perf_counter()

        try:
            pieces: list[list[bytes]] = [[] for _ in range(layout.n_ciphertexts)]
            received = 0
            for chunk in compute_stub.FetchSum(
                    compute_pb2.FetchSumRequest(job_id=job.job_id, wait_seconds=10.0),
                    timeout=config.timeout_seconds):
                received += len(chunk.data)
                if chunk.index >= layout.n_ciphertexts or received > MAX_SUM_BYTES:
                    raise ProtocolError("compute node sent more than the job's layout")
                pieces[chunk.index].append(chunk.data)
        except grpc.RpcError as exc:
            raise_from_rpc_error(exc, party=compute.name, address=compute.address,
                                 timeout=config.timeout_seconds)
    fetched = time.perf_counter()
    values = holder.decrypt([b"".join(p) for p in pieces], layout)
    decrypted = time.perf_counter()

    n_sites = len(job.parties)
    site_bytes = sum(r.bytes_sent for r in replies.values())
    total_bytes = len(public_context) * n_sites + len(params_context) + site_bytes + received
    ciphertexts = layout.n_ciphertexts * (n_sites + 1)
    secure_seconds = fetched - keys_ready
    results = {}
    offset = 0
    for analysis in job.analyses:
        stat_layout = layout_of(analysis, job.schema)
        share = stat_layout.width / layout.n_values
        totals = ckks_decode(stat_layout, values[offset:offset + stat_layout.width])
        offset += stat_layout.width
        column = job.schema[analysis.column] if analysis.column else None
        value, n = finish(analysis, column, totals)
        cost = Cost(seconds=secure_seconds * share, bytes_sent=round(total_bytes * share),
                    ciphertexts=ciphertexts)
        results[analysis.id] = AnalysisResult(analysis.id, analysis.kind, value, n, cost)
    finished = time.perf_counter()
    phases = {
        "keys": keys_ready - started,
        "local": max(r.local_seconds for r in replies.values()),
        "encrypt": max(r.encrypt_seconds for r in replies.values()),
        "submit": submitted - keys_ready,
        "fetch": fetched - submitted,
        "decrypt": decrypted - fetched,
        "finishing": finished - decrypted,
    }
    return StudyResult(study=config.name, engine="ckks", job_id=job.job_id, results=results,
                       cost=Cost(seconds=finished - started, bytes_sent=total_bytes,
                                 ciphertexts=ciphertexts),
                       phases=phases)
