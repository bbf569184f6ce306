"""The gRPC side of the interface that callers use: stubs, channels, liveness and chunks.

:class:`GrpcStudyNetwork` is what a coordinator calls during a study, :class:`GrpcPeerLinks`
carries a node's MPC frames to its peers and :class:`GrpcComputeSubmitter` a site's
ciphertexts to the compute node. Every failed call becomes the SecureCalcError of
:mod:`securecalc.transport.errors`, naming the party it came from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from securecalc.core.config import Party
from securecalc.core.limits import CKKS_SUM
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import PartyError, ProtocolError
from securecalc.transport import chunks
from securecalc.transport.channel import ChannelSet, PartyChannel, create_pinned_channel
from securecalc.transport.codec import ckks_params_to_proto, job_to_proto
from securecalc.transport.devhooks import outgoing_frame_delay
from securecalc.transport.errors import raise_from_rpc_error
from securecalc.transport.fanout import call_all, check_all
from securecalc.transport.interface import (
    NOT_YET,
    CkksReply,
    CkksRequest,
    HeadsRequest,
    MpcReply,
    MpcRequest,
    NotYet,
    OpenJob,
    StudyClockLike,
    Submission,
)
from securecalc.transport.liveness import Liveness
from securecalc.transport.messages import (
    ckks_reply_from_proto,
    heads_to_proto,
    mpc_reply_from_proto,
    states_to_json,
)
from securecalc.transport.pinned import forget
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc, node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

T = TypeVar("T")

#: how long a failed round waits for the compute node to close its job
CLOSE_SECONDS = 1.0


class GrpcStudyNetwork:
    """A coordinator's calls during one study, one channel per party for the whole study."""

    def __init__(self, tls: TlsFiles | None, clock: StudyClockLike):
        self.clock = clock
        self.channels = ChannelSet(tls, own_name="coordinator" if tls is None else None)

    def _channels(self, parties: Sequence[Party]) -> dict[str, PartyChannel]:
        return {p.name: self.channels.get(p.name, p.address) for p in parties}

    def check(self, parties: Sequence[Party]) -> None:
        check_all(self._channels(parties), self.clock)

    def run_mpc(self, parties: Sequence[Party], request: MpcRequest) -> dict[str, MpcReply]:
        message = node_pb2.MpcJobRequest(spec=job_to_proto(request.job),
                                         peer_timeout_seconds=request.peer_timeout_seconds)
        channels = self._channels(parties)
        calls = {name: (lambda t, ch=ch: node_pb2_grpc.PartyNodeStub(ch).RunMpc.future(
                     message, timeout=t)) for name, ch in channels.items()}
        replies = self._fan_out(parties, calls, watched=channels)
        return {name: mpc_reply_from_proto(r) for name, r in replies.items()}

    def run_ckks(self, parties: Sequence[Party],
                 request: CkksRequest) -> dict[str, CkksReply]:
        compute = request.compute
        spec = node_pb2.CkksJobSpec(spec=job_to_proto(request.job),
                                    compute_address=compute.address, compute_name=compute.name,
                                    params=ckks_params_to_proto(request.params),
                                    n_values=request.n_values,
                                    states_json=states_to_json(request.states),
                                    peer_timeout_seconds=request.peer_timeout_seconds)

        def request_stream() -> Iterator[node_pb2.CkksJobChunk]:
            yield node_pb2.CkksJobChunk(spec=spec)
            for piece in chunks.split(request.public_context):
                yield node_pb2.CkksJobChunk(context_chunk=piece)

        channels = self._channels(parties)
        calls = {name: (lambda t, ch=ch: node_pb2_grpc.PartyNodeStub(ch).RunCkks.future(
                     request_stream(), timeout=t)) for name, ch in channels.items()}
        # the sites send their ciphertexts to the compute node: it is watched too
        watched = {**channels, **self._channels([compute])}
        replies = self._fan_out(parties, calls, watched=watched)
        return {name: ckks_reply_from_proto(r) for name, r in replies.items()}

    def store_heads(self, parties: Sequence[Party], request: HeadsRequest) -> None:
        message = heads_to_proto(request)
        calls = {name: (lambda t, ch=ch: node_pb2_grpc.PartyNodeStub(ch).StoreHeads.future(
                     message, timeout=t)) for name, ch in self._channels(parties).items()}
        call_all(calls, addresses={p.name: p.address for p in parties}, clock=self.clock,
                 at_most=self.clock.peer_timeout)

    def _fan_out(self, parties: Sequence[Party], calls: Mapping[str, Callable[[float], Any]],
                 *, watched: Mapping[str, PartyChannel]) -> dict[str, Any]:
        with Liveness(watched, self.clock.peer_timeout) as liveness:
            return call_all(calls, addresses={p.name: p.address for p in parties},
                            clock=self.clock, liveness=liveness)

    def _stub(self, compute: Party) -> compute_pb2_grpc.ComputeNodeStub:
        return compute_pb2_grpc.ComputeNodeStub(self.channels.get(compute.name,
                                                                  compute.address))

    def open_job(self, compute: Party, request: OpenJob) -> None:
        stub = self._stub(compute)
        message = compute_pb2.OpenJobRequest(
            job_id=request.job_id, sites=list(request.sites), n_values=request.layout.n_values,
            params=ckks_params_to_proto(request.layout.params),
            params_context=request.params_context, lifetime_seconds=request.lifetime_seconds)
        self._prompt(compute, lambda t: stub.OpenJob(message, timeout=t))

    def fetch_sum(self, compute: Party, job_id: str, layout: Layout) -> list[bytes]:
        stub = self._stub(compute)

        def fetch(timeout: float) -> list[bytes]:
            request = compute_pb2.FetchSumRequest(job_id=job_id, wait_seconds=timeout)
            pieces = ((c.index, c.data) for c in stub.FetchSum(request, timeout=timeout))
            try:
                return chunks.join_indexed(pieces, layout.n_ciphertexts,
                                           max_each=CKKS_SUM.value, max_total=CKKS_SUM.value)
            except ProtocolError:
                raise ProtocolError("the compute node sent more than the job's layout") from None

        return self._prompt(compute, fetch)

    def checkpoint(self, compute: Party, job_id: str) -> str:
        stub = self._stub(compute)
        reply = self._prompt(compute, lambda t: stub.Checkpoint(
            compute_pb2.CheckpointRequest(job_id=job_id), timeout=t))
        return str(reply.checkpoint_json)

    def close_job(self, compute: Party, job_id: str) -> None:
        try:
            self._stub(compute).CloseJob(compute_pb2.CloseJobRequest(job_id=job_id),
                                         timeout=min(CLOSE_SECONDS, self.clock.peer_timeout))
        except grpc.RpcError:
            pass

    def _prompt(self, party: Party, fn: Callable[[float], T]) -> T:
        """One call that should answer promptly: within peer_timeout_seconds."""
        timeout = self.clock.remaining(self.clock.peer_timeout)
        try:
            return fn(timeout)
        except grpc.RpcError as exc:
            if self.clock.over:
                raise self.clock.expired(party.name) from exc
            raise_from_rpc_error(exc, party=party.name, address=party.address, timeout=timeout)

    def close(self) -> None:
        self.channels.close()

    def __enter__(self) -> GrpcStudyNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GrpcPeerLinks:
    """A node's Exchange streams to its MPC peers."""

    def __init__(self, tls: TlsFiles | None, me: str, pins: Mapping[str, str]):
        self.tls = tls
        self.me = me
        self.pins = dict(pins)
        self.frame_delay = outgoing_frame_delay()

    def open(self, peer: Party) -> GrpcPeerLink:
        """A link that reaches only ``peer``'s pinned key (its address comes from a job)."""
        return GrpcPeerLink(create_pinned_channel(peer.address, tls=self.tls,
                                                  expected_name=peer.name, own_name=self.me,
                                                  pins=self.pins), peer)


class GrpcPeerLink:
    def __init__(self, channel: PartyChannel, peer: Party):
        self.channel = channel
        self.peer = peer

    def stream(self, job_id: str, frames: Callable[[], Iterator[bytes]], *, timeout: float,
               closing: threading.Event) -> str | None:
        """Open the stream and relay frames on it. While the peer has not received the job
        from the coordinator it refuses the stream at once and we try again shortly; no frame
        is sent before it accepts."""
        # the servicers import the node's roles: a coordinator never needs them
        from securecalc.transport.servicers import ACCEPTED_HEADER, JOB_HEADER

        stub = node_pb2_grpc.PartyNodeStub(self.channel)
        pause = 0.05
        while not closing.is_set():
            gate = _Gate()
            call = stub.Exchange.future(_gated(job_id, frames, gate), timeout=timeout,
                                        metadata=((JOB_HEADER, job_id),))
            gate.decide(dict(call.initial_metadata() or ()).get(ACCEPTED_HEADER) == "1")
            try:
                call.result()
                return None
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.FAILED_PRECONDITION and exc.details() == NOT_YET:
                    closing.wait(pause)
                    pause = min(0.5, 2 * pause)
                    continue
                if code != grpc.StatusCode.CANCELLED:
                    forget(self.peer.address, self.peer.name)
                    return (f"stream to {self.peer.name} at {self.peer.address} broke "
                            f"({code.name if code else 'error'})")
                return None
            finally:
                gate.decide(False)
        return None

    def confirm(self, job_id: str, digest: str, *, timeout: float) -> bool | None:
        stub = node_pb2_grpc.PartyNodeStub(self.channel)
        try:
            reply = stub.Confirm(node_pb2.JobConfirmation(job_id=job_id, digest=digest),
                                 timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.FAILED_PRECONDITION and exc.details() == NOT_YET:
                raise NotYet() from None
            forget(self.peer.address, self.peer.name)  # a renewed certificate is fetched again
            raise PartyError(self.peer.name, f"confirmation refused or lost "
                                             f"({code.name if code else 'error'})") from None
        return None if reply.pending else bool(reply.same)

    def close(self) -> None:
        self.channel.close()


def _gated(job_id: str, frames: Callable[[], Iterator[bytes]],
           gate: _Gate) -> Iterator[node_pb2.MpcFrame]:
    if not gate.wait():  # refused (not here yet): the frames wait for the next stream
        return
    for data in frames():
        yield node_pb2.MpcFrame(job_id=job_id, data=data)


class _Gate:
    """Holds a stream's frames back until the receiving node has accepted the stream."""

    def __init__(self) -> None:
        self._decided = threading.Event()
        self._open = False

    def decide(self, open_: bool) -> None:
        if not self._decided.is_set():
            self._open = open_
            self._decided.set()

    def wait(self) -> bool:
        self._decided.wait()
        return self._open


class GrpcComputeSubmitter:
    """A site's Submit stream to the compute node (a channel per submission)."""

    def __init__(self, tls: TlsFiles | None, me: str, pins: Mapping[str, str]):
        self.tls = tls
        self.me = me
        self.pins = dict(pins)

    def submit(self, compute: Party, submission: Submission, *, timeout: float,
               on_cancel: Callable[[Callable[[], None]], bool]) -> None:
        job_id = submission.job_id

        def stream() -> Iterator[compute_pb2.CiphertextChunk]:
            for index, ciphertext in enumerate(submission.ciphertexts):
                for piece in chunks.split(ciphertext):
                    yield compute_pb2.CiphertextChunk(job_id=job_id, index=index, data=piece)
            if submission.signature:
                yield compute_pb2.CiphertextChunk(job_id=job_id,
                                                  signature=submission.signature)

        with create_pinned_channel(compute.address, tls=self.tls, expected_name=compute.name,
                                   own_name=self.me, pins=self.pins) as channel:
            from securecalc.transport.servicers import JOB_HEADER

            call = compute_pb2_grpc.ComputeNodeStub(channel).Submit.future(
                stream(), timeout=timeout, metadata=((JOB_HEADER, job_id),))
            if not on_cancel(call.cancel):
                call.cancel()
            try:
                call.result()
            except grpc.RpcError as exc:
                raise_from_rpc_error(exc, party=compute.name, address=compute.address,
                                     timeout=timeout)


def connect(tls: TlsFiles | None, clock: StudyClockLike) -> GrpcStudyNetwork:
    """A coordinator's gRPC network for one study (the default :class:`Connect`)."""
    return GrpcStudyNetwork(tls, clock)


__all__ = ["GrpcComputeSubmitter", "GrpcPeerLinks", "GrpcStudyNetwork", "connect"]
