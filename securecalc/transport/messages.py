"""Conversion between the node and compute protobuf messages and the domain messages of
:mod:`securecalc.transport.interface` (the job itself: :mod:`securecalc.transport.codec`)."""

from __future__ import annotations

import json
from typing import Any

from securecalc.errors import ProtocolError
from securecalc.transport.interface import (
    CkksReply,
    HeadsRequest,
    MpcReply,
    ReleaseOutcome,
    StepOutcome,
)
from securecalc.transport.proto import node_pb2


def mpc_reply_to_proto(reply: MpcReply) -> node_pb2.MpcJobReply:
    return node_pb2.MpcJobReply(
        checkpoint_json=reply.checkpoint_json,
        steps=[node_pb2.StepOutcome(analysis_id=s.analysis_id, totals=[str(t) for t in s.totals],
                                    seconds=s.seconds, bytes_sent=s.bytes_sent, rounds=s.rounds)
               for s in reply.steps],
        local_seconds=reply.local_seconds, setup_seconds=reply.setup_seconds,
        bytes_sent=reply.bytes_sent, rounds=reply.rounds)


def mpc_reply_from_proto(reply: node_pb2.MpcJobReply) -> MpcReply:
    try:
        steps = tuple(StepOutcome(analysis_id=s.analysis_id,
                                  totals=tuple(int(t) for t in s.totals), seconds=s.seconds,
                                  bytes_sent=s.bytes_sent, rounds=s.rounds)
                      for s in reply.steps)
    except ValueError:
        raise ProtocolError("a node returned totals that are not integers") from None
    return MpcReply(checkpoint_json=reply.checkpoint_json, steps=steps,
                    local_seconds=reply.local_seconds, setup_seconds=reply.setup_seconds,
                    bytes_sent=reply.bytes_sent, rounds=reply.rounds)


def ckks_reply_to_proto(reply: CkksReply) -> node_pb2.CkksJobReply:
    return node_pb2.CkksJobReply(checkpoint_json=reply.checkpoint_json,
                                 bytes_sent=reply.bytes_sent, ciphertexts=reply.ciphertexts,
                                 local_seconds=reply.local_seconds,
                                 encrypt_seconds=reply.encrypt_seconds)


def ckks_reply_from_proto(reply: node_pb2.CkksJobReply) -> CkksReply:
    return CkksReply(checkpoint_json=reply.checkpoint_json, bytes_sent=reply.bytes_sent,
                     ciphertexts=reply.ciphertexts, local_seconds=reply.local_seconds,
                     encrypt_seconds=reply.encrypt_seconds)


def heads_to_proto(request: HeadsRequest) -> node_pb2.HeadsRequest:
    return node_pb2.HeadsRequest(
        job_id=request.job_id, checkpoint_json=list(request.checkpoint_json),
        outcomes=[node_pb2.ReleaseOutcome(analysis_id=o.analysis_id, status=o.status,
                                          note=o.note, digest=o.digest)
                  for o in request.outcomes])


def heads_from_proto(request: node_pb2.HeadsRequest) -> HeadsRequest:
    return HeadsRequest(
        job_id=request.job_id, checkpoint_json=tuple(request.checkpoint_json),
        outcomes=tuple(ReleaseOutcome(analysis_id=o.analysis_id, status=o.status, note=o.note,
                                      digest=o.digest) for o in request.outcomes))


def states_to_json(states: Any) -> str:
    return json.dumps(states) if states else ""


def states_from_json(text: str) -> dict[str, Any]:
    """The public states of iterative analyses; ProtocolError when malformed."""
    try:
        states = json.loads(text) if text else {}
    except (ValueError, RecursionError):  # json recurses once per nesting level
        raise ProtocolError("malformed iterative states") from None
    if not isinstance(states, dict):
        raise ProtocolError("malformed iterative states")
    return states
