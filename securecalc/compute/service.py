"""gRPC servicer of the compute node: decode, call :class:`ComputeJobs`, encode."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc

from securecalc.audit.events import digest, signed_head
from securecalc.audit.log import AuditLog
from securecalc.compute.jobs import ComputeJobs
from securecalc.core.limits import CKKS_CIPHERTEXT, PARTIES
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import CryptoError, ProtocolError
from securecalc.roles import Role
from securecalc.signing import verify_submission
from securecalc.transport import chunks
from securecalc.transport.codec import ckks_params_from_proto
from securecalc.transport.errors import rpc_boundary
from securecalc.transport.identity import peer_certificate, require_peer
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc

MAX_FETCH_WAIT_SECONDS = 300.0


class ComputeService(compute_pb2_grpc.ComputeNodeServicer):
    def __init__(self, jobs: ComputeJobs, audit: AuditLog, *, coordinators: tuple[str, ...],
                 insecure: bool):
        self.jobs = jobs
        self.audit = audit
        self.coordinators = coordinators
        self.insecure = insecure

    @rpc_boundary
    def OpenJob(self, request: compute_pb2.OpenJobRequest,
                context: grpc.ServicerContext) -> compute_pb2.OpenJobReply:
        coordinator = require_peer(context, self.coordinators, role=Role.COORDINATOR,
                                   insecure=self.insecure)
        PARTIES.check(len(request.sites), "sites")  # the layout checks its ciphertext count
        layout = Layout(n_values=request.n_values, params=ckks_params_from_proto(request.params))
        self.jobs.open(request.job_id, tuple(request.sites), layout, request.params_context)
        self.audit.append("job_open", job=request.job_id, coordinator=coordinator,
                          sites=list(request.sites), n_values=request.n_values,
                          ciphertexts=layout.n_ciphertexts)
        return compute_pb2.OpenJobReply()

    @rpc_boundary
    def Submit(self, request_iterator: Iterator[compute_pb2.CiphertextChunk],
               context: grpc.ServicerContext) -> compute_pb2.SubmitReply:
        first = next(request_iterator, None)
        if first is None or not first.job_id:
            raise ProtocolError("submission without job id")
        job_id = first.job_id
        site = require_peer(context, self.jobs.expected_sites(job_id), role=Role.HOSPITAL,
                            insecure=self.insecure)
        n_ciphertexts = self.jobs.layout(job_id).n_ciphertexts
        parts: list[list[bytes]] = [[] for _ in range(n_ciphertexts)]
        sizes = [0] * n_ciphertexts
        signature = b""
        for chunk in _chain(first, request_iterator):
            if chunk.job_id not in ("", job_id) or chunk.index >= n_ciphertexts:
                raise ProtocolError("chunk outside the job's layout")
            if chunk.signature:
                if signature or chunk.data:
                    raise ProtocolError("misplaced signature")
                signature = chunk.signature
                continue
            if signature:
                raise ProtocolError("data after the signature")
            sizes[chunk.index] += len(chunk.data)
            if sizes[chunk.index] > CKKS_CIPHERTEXT.value:
                raise ProtocolError("ciphertext too large")
            parts[chunk.index].append(chunk.data)
        ciphertexts = [b"".join(p) for p in parts]
        if not self.insecure:  # bound to this job, this site and each ciphertext's position
            cert = peer_certificate(context)
            if cert is None or not signature:
                raise CryptoError(f"the submission of {site} is not signed")
            verify_submission(cert, signature, job_id, site, ciphertexts)
        self.jobs.submit(job_id, site, ciphertexts)
        self.audit.append("contribution", job=job_id, site=site, bytes=sum(sizes),
                          signature=hashlib.sha256(signature).hexdigest() if signature else None)
        return compute_pb2.SubmitReply(received=n_ciphertexts)

    @rpc_boundary
    def FetchSum(self, request: compute_pb2.FetchSumRequest,
                 context: grpc.ServicerContext) -> Iterator[compute_pb2.CiphertextChunk]:
        require_peer(context, self.coordinators, role=Role.COORDINATOR,
                     insecure=self.insecure)
        wait = min(max(request.wait_seconds, 0.0), MAX_FETCH_WAIT_SECONDS)
        context.add_callback(self.jobs.wake)  # a coordinator that goes away frees this thread
        total = self.jobs.take_sum(request.job_id, wait, gone=lambda: not context.is_active())
        self.audit.append("sum_released", job=request.job_id,
                          bytes=sum(len(c) for c in total), digest=digest(
                              [hashlib.sha256(c).hexdigest() for c in total]))
        for index, ciphertext in enumerate(total):
            for piece in chunks.split(ciphertext):
                yield compute_pb2.CiphertextChunk(job_id=request.job_id, index=index, data=piece)


    @rpc_boundary
    def CloseJob(self, request: compute_pb2.CloseJobRequest,
                 context: grpc.ServicerContext) -> compute_pb2.CloseJobReply:
        coordinator = require_peer(context, self.coordinators, role=Role.COORDINATOR,
                                   insecure=self.insecure)
        if self.jobs.close(request.job_id):
            self.audit.append("job_closed", job=request.job_id, coordinator=coordinator)
        return compute_pb2.CloseJobReply()

    @rpc_boundary
    def Checkpoint(self, request: compute_pb2.CheckpointRequest,
                   context: grpc.ServicerContext) -> compute_pb2.CheckpointReply:
        require_peer(context, self.coordinators, role=Role.COORDINATOR,
                     insecure=self.insecure)
        return compute_pb2.CheckpointReply(checkpoint_json=signed_head(self.audit))


def _chain(first: compute_pb2.CiphertextChunk,
           rest: Iterator[compute_pb2.CiphertextChunk]) -> Iterator[compute_pb2.CiphertextChunk]:
    yield first
    yield from rest
