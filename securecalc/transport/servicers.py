"""The gRPC servicers: authenticate the caller, decode, call the role, encode.

Every method is thin: the caller comes from its certificate (:func:`identity.caller_of`, with
this server's key pins, which the role's :meth:`Caller.require` checks),
messages from the codecs, large objects from chunks, and every error takes the one mapping
of :mod:`securecalc.transport.errors`. What a call does is the role's
(:class:`securecalc.node.party.PartyNode`, :class:`securecalc.compute.aggregator.Aggregator`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping

import grpc

from securecalc.compute.aggregator import Aggregator
from securecalc.core.config import Party
from securecalc.core.limits import CKKS_CIPHERTEXT, CKKS_CONTEXT
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import ProtocolError
from securecalc.node.party import PartyNode
from securecalc.transport import chunks
from securecalc.transport.admission import Admission
from securecalc.transport.codec import ckks_params_from_proto, job_from_proto
from securecalc.transport.errors import rpc_boundary
from securecalc.transport.identity import caller_of
from securecalc.transport.interface import Caller, CkksRequest, MpcRequest, OpenJob, Submission
from securecalc.transport.messages import (
    ckks_reply_to_proto,
    heads_from_proto,
    mpc_reply_to_proto,
    states_from_json,
)
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc, node_pb2, node_pb2_grpc
from securecalc.transport.server import create_server
from securecalc.transport.tls import TlsFiles

JOB_HEADER = "x-securecalc-job"
"""Metadata naming the job of an Exchange or Submit stream, so the receiving node can find the
job (and check the caller is one of its parties) before reading anything."""
ACCEPTED_HEADER = "x-securecalc-accepted"
"""Initial metadata by which the receiving node accepts an Exchange stream."""


class ServicerContext:
    """A gRPC call as a role sees it (:class:`~securecalc.transport.interface.CallContext`)."""

    def __init__(self, context: grpc.ServicerContext):
        self._context = context

    def time_remaining(self) -> float | None:
        left: float | None = self._context.time_remaining()
        return left

    def on_end(self, callback: Callable[[], None]) -> bool:
        return bool(self._context.add_callback(callback))

    def is_active(self) -> bool:
        return bool(self._context.is_active())


class NodeServicer(node_pb2_grpc.PartyNodeServicer):
    def __init__(self, node: PartyNode, *, insecure: bool):
        self.node = node
        self.insecure = insecure
        self.pins = dict(node.config.pins)

    def _caller(self, context: grpc.ServicerContext) -> Caller:
        return caller_of(context, insecure=self.insecure, pins=self.pins)

    @rpc_boundary
    def RunMpc(self, request: node_pb2.MpcJobRequest,
               context: grpc.ServicerContext) -> node_pb2.MpcJobReply:
        caller = self._caller(context)
        spec = request.spec
        job = self.node.receive_job(caller, "mpc", spec.job_id,
                                    lambda: job_from_proto(spec, "mpc"))
        reply = self.node.run_mpc(caller, MpcRequest(job, request.peer_timeout_seconds),
                                  ServicerContext(context))
        return mpc_reply_to_proto(reply)

    @rpc_boundary
    def Exchange(self, request_iterator: Iterator[node_pb2.MpcFrame],
                 context: grpc.ServicerContext) -> node_pb2.ExchangeAck:
        caller = self._caller(context)
        job_id = dict(context.invocation_metadata()).get(JOB_HEADER)
        inbound = self.node.accept_stream(caller, job_id if isinstance(job_id, str) else "")
        context.send_initial_metadata(((ACCEPTED_HEADER, "1"),))
        frames = 0
        try:
            for frame in request_iterator:
                if frame.job_id != job_id:
                    raise ProtocolError("frame of another job")
                inbound.deliver(frame.data)
                frames += 1
        except grpc.RpcError:
            inbound.lost(f"the stream from {caller.name} broke")
            raise
        return node_pb2.ExchangeAck(frames=frames)

    @rpc_boundary
    def RunCkks(self, request_iterator: Iterator[node_pb2.CkksJobChunk],
                context: grpc.ServicerContext) -> node_pb2.CkksJobReply:
        caller = self._caller(context)
        self.node.coordinator_of(caller)  # before the stream is read
        first = next(request_iterator, None)
        if first is None or not first.HasField("spec"):
            raise ProtocolError("CKKS job without its specification")
        spec = first.spec
        job = self.node.receive_job(caller, "ckks", spec.spec.job_id,
                                    lambda: job_from_proto(spec.spec, "ckks"))
        public_context = chunks.join(
            (c.context_chunk for c in itertools.chain([first], request_iterator)),
            max_bytes=CKKS_CONTEXT.value)
        request = CkksRequest(job=job, compute=Party(spec.compute_name, spec.compute_address),
                              params=ckks_params_from_proto(spec.params),
                              n_values=spec.n_values, public_context=public_context,
                              states=states_from_json(spec.states_json),
                              peer_timeout_seconds=spec.peer_timeout_seconds)
        return ckks_reply_to_proto(self.node.run_ckks(caller, request,
                                                      ServicerContext(context)))

    @rpc_boundary
    def StoreHeads(self, request: node_pb2.HeadsRequest,
                   context: grpc.ServicerContext) -> node_pb2.HeadsReply:
        caller = self._caller(context)
        return node_pb2.HeadsReply(stored=self.node.store_heads(caller,
                                                                heads_from_proto(request)))

    @rpc_boundary
    def Confirm(self, request: node_pb2.JobConfirmation,
                context: grpc.ServicerContext) -> node_pb2.ConfirmReply:
        verdict = self.node.confirm(self._caller(context), request.job_id, request.digest)
        return node_pb2.ConfirmReply(same=bool(verdict), pending=verdict is None)


class ComputeServicer(compute_pb2_grpc.ComputeNodeServicer):
    def __init__(self, aggregator: Aggregator, *, insecure: bool):
        self.aggregator = aggregator
        self.insecure = insecure
        self.pins = dict(aggregator.pins)

    def _caller(self, context: grpc.ServicerContext) -> Caller:
        return caller_of(context, insecure=self.insecure, pins=self.pins)

    @rpc_boundary
    def OpenJob(self, request: compute_pb2.OpenJobRequest,
                context: grpc.ServicerContext) -> compute_pb2.OpenJobReply:
        caller = self._caller(context)
        layout = Layout(n_values=request.n_values, params=ckks_params_from_proto(request.params))
        self.aggregator.open_job(caller, OpenJob(request.job_id, tuple(request.sites), layout,
                                                 request.params_context,
                                                 request.lifetime_seconds))
        return compute_pb2.OpenJobReply()

    @rpc_boundary
    def Submit(self, request_iterator: Iterator[compute_pb2.CiphertextChunk],
               context: grpc.ServicerContext) -> compute_pb2.SubmitReply:
        caller = self._caller(context)
        job_id = dict(context.invocation_metadata()).get(JOB_HEADER)
        if not isinstance(job_id, str) or not job_id:
            raise ProtocolError("submission without job id")
        layout = self.aggregator.accept(caller, job_id)  # before anything is read
        first = next(request_iterator, None)
        if first is None or first.job_id != job_id:
            raise ProtocolError("submission without job id")
        signature: list[bytes] = []

        def pieces() -> Iterator[tuple[int, bytes]]:
            for chunk in itertools.chain([first], request_iterator):
                if chunk.job_id not in ("", job_id):
                    raise ProtocolError("chunk outside the job's layout")
                if chunk.signature:
                    if signature or chunk.data:
                        raise ProtocolError("misplaced signature")
                    signature.append(chunk.signature)
                    continue
                if signature:
                    raise ProtocolError("data after the signature")
                yield chunk.index, chunk.data

        ciphertexts = chunks.join_indexed(pieces(), layout.n_ciphertexts,
                                          max_each=CKKS_CIPHERTEXT.value)
        received = self.aggregator.submit(caller, Submission(
            job_id, tuple(ciphertexts), signature[0] if signature else b""))
        return compute_pb2.SubmitReply(received=received)

    @rpc_boundary
    def FetchSum(self, request: compute_pb2.FetchSumRequest,
                 context: grpc.ServicerContext) -> Iterator[compute_pb2.CiphertextChunk]:
        caller = self._caller(context)
        total = self.aggregator.fetch_sum(caller, request.job_id, request.wait_seconds,
                                          ServicerContext(context))
        for index, ciphertext in enumerate(total):
            for piece in chunks.split(ciphertext):
                yield compute_pb2.CiphertextChunk(job_id=request.job_id, index=index, data=piece)

    @rpc_boundary
    def CloseJob(self, request: compute_pb2.CloseJobRequest,
                 context: grpc.ServicerContext) -> compute_pb2.CloseJobReply:
        self.aggregator.close_job(self._caller(context), request.job_id)
        return compute_pb2.CloseJobReply()

    @rpc_boundary
    def Checkpoint(self, request: compute_pb2.CheckpointRequest,
                   context: grpc.ServicerContext) -> compute_pb2.CheckpointReply:
        head = self.aggregator.checkpoint(self._caller(context))
        return compute_pb2.CheckpointReply(checkpoint_json=head)


def admission(insecure: bool, pins: Mapping[str, str]) -> Admission:
    """Every call of a node or compute server: its caller bound (name, role and pinned key),
    in a slot of its own, with a deadline for its first message
    (:mod:`securecalc.transport.admission`)."""
    table = dict(pins)
    return Admission(lambda context: caller_of(context, insecure=insecure, pins=table).name)


def serve_node(node: PartyNode, listen: str, *, tls: TlsFiles | None,
               insecure: bool) -> tuple[grpc.Server, int]:
    """A started gRPC server for ``node`` on ``listen``, and the port it got."""
    servicer = NodeServicer(node, insecure=insecure)
    return create_server(
        listen, tls=tls,
        register=lambda server: node_pb2_grpc.add_PartyNodeServicer_to_server(servicer, server),
        services=("securecalc.v1.PartyNode",), admission=admission(insecure, servicer.pins),
    )


def serve_compute(aggregator: Aggregator, listen: str, *, tls: TlsFiles | None,
                  insecure: bool) -> tuple[grpc.Server, int]:
    """A started gRPC server for the compute node ``aggregator`` on ``listen``."""
    servicer = ComputeServicer(aggregator, insecure=insecure)
    return create_server(
        listen, tls=tls,
        register=lambda server: compute_pb2_grpc.add_ComputeNodeServicer_to_server(servicer,
                                                                                   server),
        services=("securecalc.v1.ComputeNode",), admission=admission(insecure, servicer.pins),
    )
