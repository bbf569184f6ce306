"""Binary frames exchanged between MPC workers (opaque bytes to the node that relays them).

Every frame starts with ``version (u8) | kind (u8) | round (u32)``, little-endian, then:

=======  ==============================================================================
HELLO    ``pid (u16) | job digest (32 bytes) | PRSS keys (16 bytes each)``
DATA     ``MPyC program counter (i64) | payload``
BYE      nothing: the sender has sent everything it ever will for this job
ABORT    ``reason code (u8) | culprit pid (u16, 0xFFFF = none)``
=======  ==============================================================================

The node must relay each frame as one message, in order, per peer, and only over the
authenticated, encrypted (mTLS) stream to that peer: HELLO carries the secret PRSS keys the
sender shares with the receiver, DATA carries Shamir shares. Frames carry no sender identity
except HELLO's ``pid``, which the receiver compares with the authenticated peer the node
names; DATA and BYE are attributed to the channel they arrive on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 1
HELLO, DATA, BYE, ABORT = 1, 2, 3, 4
NO_PID = 0xFFFF
DIGEST_SIZE = 32
KEY_SIZE = 16

_HEAD = struct.Struct("<BBI")
_HELLO = struct.Struct(f"<H{DIGEST_SIZE}s")
_DATA = struct.Struct("<q")
_ABORT = struct.Struct("<BH")

#: what a peer reports after "party X aborted the job after ..."; fixed texts, so an ABORT
#: never carries the sender's message (which may quote its data)
ABORT_REASONS = {
    1: "a party was lost",
    2: "a deadline passed",
    3: "a malformed message",
    4: "its node aborted the job",
    5: "an internal error",
    6: "its input was refused by its own checks",
    7: "a configuration error",
}
#: the ABORT code of each :data:`~securecalc.engines.mpc.failure.KINDS` of failure
ABORT_CODES = {"party_lost": 1, "timeout": 2, "protocol": 3, "aborted": 4, "internal": 5,
               "input": 6, "config": 7}


class FrameError(ValueError):
    """The bytes are not a well-formed frame."""


@dataclass(frozen=True)
class Hello:
    round: int
    pid: int
    digest: bytes
    keys: bytes


@dataclass(frozen=True)
class Data:
    round: int
    pc: int
    payload: bytes


@dataclass(frozen=True)
class Bye:
    round: int


@dataclass(frozen=True)
class Abort:
    round: int
    code: int
    culprit: int | None


Frame = Hello | Data | Bye | Abort


def encode(frame: Frame) -> bytes:
    """Serialise a frame."""
    match frame:
        case Hello(r, pid, digest, keys):
            if len(digest) != DIGEST_SIZE or len(keys) % KEY_SIZE:
                raise FrameError("bad HELLO fields")
            return _HEAD.pack(VERSION, HELLO, r) + _HELLO.pack(pid, digest) + keys
        case Data(r, pc, payload):
            return _HEAD.pack(VERSION, DATA, r) + _DATA.pack(pc) + payload
        case Bye(r):
            return _HEAD.pack(VERSION, BYE, r)
        case Abort(r, code, culprit):
            pid = NO_PID if culprit is None else culprit
            return _HEAD.pack(VERSION, ABORT, r) + _ABORT.pack(code, pid)
    raise FrameError(f"not a frame: {type(frame).__name__}")


def decode(data: bytes) -> Frame:
    """Parse a frame; raise :class:`FrameError` (deliberately terse) if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError("malformed frame")
    data = bytes(data)
    if len(data) < _HEAD.size:
        raise FrameError("malformed frame")
    version, kind, r = _HEAD.unpack_from(data)
    body = data[_HEAD.size:]
    if version != VERSION:
        raise FrameError("malformed frame")
    if kind == HELLO and len(body) >= _HELLO.size and (len(body) - _HELLO.size) % KEY_SIZE == 0:
        pid, digest = _HELLO.unpack_from(body)
        return Hello(r, pid, digest, body[_HELLO.size:])
    if kind == DATA and len(body) >= _DATA.size:
        (pc,) = _DATA.unpack_from(body)
        return Data(r, pc, body[_DATA.size:])
    if kind == BYE and not body:
        return Bye(r)
    if kind == ABORT and len(body) == _ABORT.size:
        code, culprit = _ABORT.unpack(body)
        return Abort(r, code, None if culprit == NO_PID else culprit)
    raise FrameError("malformed frame")
