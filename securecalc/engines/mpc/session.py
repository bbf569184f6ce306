"""The worker's side of the wire: MPyC's transport replaced by frames over the node pipe.

:class:`PeerChannel` is what MPyC sees as ``runtime.parties[peer].protocol`` (the seam MPyC
uses: ``send(pc, payload)``, ``receive(pc)``, ``close_connection()``, ``nbytes_sent``).
:class:`Session` runs a job on one asyncio loop: PRSS handshake, steps, final
synchronisation, deadlines, and cost accounting. It imports no mpyc; the worker hands it a
ready runtime.

Identity. The node authenticates each peer (mTLS) and tells the worker which peer a frame
came from; the worker keeps one channel per peer and files a frame's payload only in that
peer's buffers. HELLO carries a pid, which must equal the authenticated one, and the job
digest, which must equal ours. No frame can speak for another party.

Rounds. Every outgoing frame is tagged ``r = 1 + max round of the frames received before it
was sent`` (a Lamport clock starting at 0), where a frame counts as received when the
computation takes its payload (MPyC gathers it), not when it merely arrives: a frame a
faster peer sent early is no dependency of what this party sends meanwhile. ``r`` is then the
length of the longest chain of messages leading to the frame. The running maximum over
frames sent and received is the round count so far; the job's ``rounds`` is its final value.
A secure sum measures 2 (input, output), the handshake 1 and the final synchronisation 1.

Steps run concurrently. Each step is one coroutine under its own MPyC program counter,
forked in step order (as MPyC forks one for every ``mpc_coro`` call), so every party labels
the same step's messages alike however the steps interleave. Each step keeps its own clock
(:class:`Meter`, found through a context variable that the tasks MPyC spawns inherit): a
frame is tagged and counted by the step that sends or consumes it, a step's ``rounds`` is the
length of its own chain, and the job's rounds are the handshake, the longest step and the
final synchronisation: the longest dependency chain, not the sum of the steps.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from securecalc.engines.mpc import frames
from securecalc.engines.mpc.failure import Failure
from securecalc.engines.mpc.steps import start_step
from securecalc.engines.mpc.task import JobResult, MpcJob, StepResult

Emit = Callable[[tuple[Any, ...]], None]
_TICK = 0.1


@dataclass
class Meter:
    """One step's Lamport clock (max round consumed), highest round and bytes sent."""

    clock: int
    high: int
    bytes_sent: int = 0


_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "securecalc_mpc_step_meter", default=None)


class Inbound(asyncio.Future[Any]):
    """A payload from a peer; its round reaches the clock of the step that asked for it when
    MPyC takes the result."""

    def __init__(self, session: Session):
        super().__init__(loop=session.loop)
        self.session = session
        self.round = 0
        self.meter = _METER.get()

    def result(self) -> Any:
        value = super().result()
        self.session.see(self.round, self.meter)
        return value


class PeerChannel:
    """MPyC protocol object for one peer, backed by the session."""

    __slots__ = ("_session", "peer_pid", "nbytes_sent")

    def __init__(self, session: Session, peer_pid: int):
        self._session = session
        self.peer_pid = peer_pid
        self.nbytes_sent = 0

    def send(self, pc: int, payload: bytes) -> None:
        self.nbytes_sent += self._session.send_data(self.peer_pid, pc, payload)

    def receive(self, pc: int) -> Inbound:
        return self._session.receive_data(self.peer_pid, pc)

    def close_connection(self) -> None:
        """Nothing to close: the node owns the streams."""


class Session:
    """Runs one job for one party; see the module docstring for identity and rounds."""

    def __init__(self, job: MpcJob, rt: Any, loop: asyncio.AbstractEventLoop, emit: Emit):
        self.job, self.rt, self.loop, self._emit = job, rt, loop, emit
        self.me = job.pid
        self.peers = job.peers
        self.digest = job.digest()
        self.started = time.monotonic()
        self.deadline = self.started + job.job_timeout
        self.last_arrival = {p: self.started for p in self.peers}  # also set by reader thread
        # per peer: pc -> (round, payload) not yet asked for, or the Inbound MPyC waits on
        self._buffers: dict[int, dict[int, tuple[int, bytes] | Inbound]] = {
            p: {} for p in self.peers}
        self._pending = dict.fromkeys(self.peers, 0)
        self._wait_since: dict[int, float] = {}
        self._need_hello = set(self.peers)
        self._bye_from: set[int] = set()
        self._handshake_rounds: list[int] = []
        self._hellos = loop.create_future()
        self._byes = loop.create_future()
        self._failed = loop.create_future()
        self.failure: Failure | None = None
        self.phase = "setup"
        self._running: list[str] = []  # steps still running while phase is "steps"
        self._phase_since = self.started
        self.clock = 0  # max round of frames consumed
        self.high = 0  # max round of frames consumed or sent
        self.bytes_sent = 0
        self.frames_sent = 0
        self._finished = False

    # ----------------------------------------------------------------- outgoing
    def _send_frame(self, peer: int, frame: frames.Frame) -> int:
        data = frames.encode(frame)
        self._emit(("out", peer, data))
        self.bytes_sent += len(data)
        self.frames_sent += 1
        return len(data)

    def _tag(self, meter: Meter | None = None) -> int:
        """The round of a frame sent now, by ``meter``'s step (None: outside the steps)."""
        r = (self.clock if meter is None else meter.clock) + 1
        if meter is not None:
            meter.high = max(meter.high, r)
        self.high = max(self.high, r)
        return r

    def see(self, r: int, meter: Meter | None = None) -> None:
        """A frame of round ``r`` was consumed (by ``meter``'s step; None: outside them)."""
        if meter is None:
            self.clock = max(self.clock, r)
        else:
            meter.clock = max(meter.clock, r)
            meter.high = max(meter.high, r)
        self.high = max(self.high, r)

    def send_data(self, peer: int, pc: int, payload: bytes) -> int:
        if self.failure is not None:
            return 0
        meter = _METER.get()
        sent = self._send_frame(peer, frames.Data(self._tag(meter), pc, bytes(payload)))
        if meter is not None:
            meter.bytes_sent += sent
        return sent

    def receive_data(self, peer: int, pc: int) -> Inbound:
        buf = self._buffers[peer]
        fut = Inbound(self)
        item = buf.pop(pc, None)
        if item is None:
            buf[pc] = fut
            self._pending[peer] += 1
            if self._pending[peer] == 1:
                self._wait_since[peer] = time.monotonic()
        elif isinstance(item, tuple):
            fut.round = item[0]
            fut.set_result(item[1])
        else:  # MPyC never asks twice for one pc
            raise Failure("internal", "payload requested twice")
        return fut

    def broadcast_abort(self) -> None:
        """Tell every peer we stopped (best effort; the node drops frames to dead peers)."""
        f = self.failure
        internal = frames.ABORT_CODES["internal"]
        code = frames.ABORT_CODES.get(f.kind, internal) if f else internal
        culprit = f.peer if f else None
        for p in self.peers:
            try:
                self._send_frame(p, frames.Abort(self.clock + 1, code, culprit))
            except Exception:  # noqa: BLE001 - the pipe may be gone already
                return

    # ----------------------------------------------------------------- incoming
    def on_node_message(self, msg: Any) -> None:
        """Handle one message from the node (called on the loop thread)."""
        if self._finished or self.failure is not None:
            return
        try:
            self._dispatch(msg)
        except Failure as f:
            self.fail(f)

    def _dispatch(self, msg: Any) -> None:
        if not isinstance(msg, tuple) or not msg:
            raise Failure("internal", "the node sent an unknown message")
        tag = msg[0]
        if tag == "in" and len(msg) == 3:
            peer, data = msg[1], msg[2]
            self._check_peer(peer)
            self.last_arrival[peer] = time.monotonic()
            self._on_frame(peer, data)
        elif tag == "lost" and len(msg) == 3:
            peer = msg[1]
            self._check_peer(peer)
            if peer not in self._bye_from:  # after BYE a closed stream is the normal end
                raise Failure("party_lost", f"connection lost: {msg[2]}", peer)
        elif tag == "abort" and len(msg) == 2:
            raise Failure("aborted", f"aborted by the node: {msg[1]}")
        else:
            raise Failure("internal", "the node sent an unknown message")

    def _check_peer(self, peer: object) -> None:
        if not isinstance(peer, int) or peer not in self._buffers:
            raise Failure("internal", f"the node named an invalid peer {peer!r}")

    def _on_frame(self, peer: int, data: bytes) -> None:
        try:
            frame = frames.decode(data)
        except frames.FrameError:
            raise Failure("protocol", "malformed message", peer) from None
        if isinstance(frame, frames.Abort):
            self._on_abort(peer, frame)
        elif isinstance(frame, frames.Hello):
            self._on_hello(peer, frame)
        elif peer in self._need_hello or peer in self._bye_from:
            raise Failure("protocol", "unexpected message", peer)
        elif isinstance(frame, frames.Bye):
            self._handshake_rounds.append(frame.round)
            self._bye_from.add(peer)
            if len(self._bye_from) == len(self.peers):
                self._byes.set_result(None)
        else:
            self._on_data(peer, frame)

    def _on_hello(self, peer: int, hello: frames.Hello) -> None:
        if peer not in self._need_hello:
            raise Failure("protocol", "unexpected message", peer)
        if hello.pid != peer:  # identity binding: the payload may not claim another party
            raise Failure("protocol", "claimed another party's identity", peer)
        if hello.digest != self.digest:
            raise Failure("protocol", "runs a different job (id, parties or steps)", peer)
        if len(hello.keys) != self.rt._prss_keys_from_peer(peer):
            raise Failure("protocol", "malformed message", peer)
        self.rt._prss_keys_from_peer(peer, hello.keys)
        self._handshake_rounds.append(hello.round)
        self._need_hello.discard(peer)
        if not self._need_hello:
            self._hellos.set_result(None)

    def _on_abort(self, peer: int, abort: frames.Abort) -> None:
        name = self.job.party_name(peer)
        why = frames.ABORT_REASONS.get(abort.code, "an unknown reason")
        culprit = abort.culprit if abort.culprit in self._buffers else peer
        raise Failure("party_lost", f"party {name!r} aborted the job after {why}", culprit)

    def _on_data(self, peer: int, frame: frames.Data) -> None:
        buf = self._buffers[peer]
        item = buf.pop(frame.pc, None)
        if item is None:
            buf[frame.pc] = (frame.round, frame.payload)
        elif isinstance(item, Inbound) and not item.done():
            item.round = frame.round
            item.set_result(frame.payload)
            self._pending[peer] -= 1
            if not self._pending[peer]:
                self._wait_since.pop(peer, None)
        else:
            raise Failure("protocol", "unexpected message", peer)

    def _consume_handshake(self) -> None:
        for r in self._handshake_rounds:
            self.see(r)
        self._handshake_rounds.clear()

    # ---------------------------------------------------------------- deadlines
    def fail(self, failure: Failure) -> None:
        if self.failure is None and not self._finished:
            self.failure = failure
            self._failed.set_result(None)

    def _waited(self) -> dict[int, float]:
        """Peers this party is waiting for, with the time the wait began."""
        if self.phase == "setup":
            return dict.fromkeys(self._need_hello, self._phase_since)
        if self.phase == "final":
            return {p: self._phase_since for p in self.peers if p not in self._bye_from}
        return dict(self._wait_since)

    def _watchdog(self) -> None:
        if self._finished or self.failure is not None:
            return
        now = time.monotonic()
        limit = self.job.setup_timeout if self.phase == "setup" else self.job.peer_timeout
        quiet = {p: now - max(since, self.last_arrival[p]) for p, since in self._waited().items()}
        if now >= self.deadline:
            peer = max(quiet, key=lambda p: (quiet[p], -p)) if quiet else None
            who = "" if peer is None else f" while waiting for party {self.job.party_name(peer)!r}"
            self.fail(Failure("timeout", f"job exceeded {self.job.job_timeout:g} s{who}", peer))
            return
        for p in sorted(quiet):
            if quiet[p] > limit:
                self.fail(Failure("party_lost", f"stopped answering: no message for {limit:g} s "
                                                f"{self._where()}", p))
                return
        self.loop.call_later(min(_TICK, limit / 10), self._watchdog)

    # --------------------------------------------------------------------- run
    async def execute(self) -> JobResult:
        """Run the job; raise :class:`Failure` if it fails."""
        self._watchdog()
        work = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait({work, self._failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not work.done():
                work.cancel()
        if self.failure is not None:
            raise self.failure
        try:
            return work.result()
        except Failure as f:
            self.fail(f)
            raise
        finally:
            self._finished = True

    def _where(self) -> str:
        if self.phase == "steps" and self._running:
            return f"during step {self._running[0]!r}"
        return "during setup" if self.phase == "setup" else "during the final synchronisation"

    def _enter(self, phase: str) -> None:
        self.phase, self._phase_since = phase, time.monotonic()

    async def _run(self) -> JobResult:
        for p in self.peers:
            keys = b"".join(self.rt._prss_keys_to_peer(p))
            self._send_frame(p, frames.Hello(self._tag(), self.me, self.digest, keys))
        await self._hellos
        self._consume_handshake()
        setup_seconds = time.monotonic() - self.started
        setup_bytes, setup_rounds = self.bytes_sent, self.high
        self._enter("steps")
        results = await self._run_steps()
        self._enter("final")
        for p in self.peers:
            self._send_frame(p, frames.Bye(self._tag()))
        await self._byes
        self._consume_handshake()
        return JobResult(results, setup_seconds, self.bytes_sent, self.high,
                         setup_bytes=setup_bytes, setup_rounds=setup_rounds)

    async def _run_steps(self) -> tuple[StepResult, ...]:
        """Run every step concurrently, each under a program counter forked in step order and
        with its own :class:`Meter`; then advance the session's clock past all of them."""
        from mpyc.asyncoro import _ProgramCounterWrapper, _wrap_in_coro  # mpyc is loaded

        started = time.monotonic()
        self._running = [s.name for s in self.job.steps]
        tasks = []
        for step in self.job.steps:
            meter = Meter(self.clock, self.high)
            context = contextvars.copy_context()
            context.run(_METER.set, meter)
            coro = _wrap_in_coro(_ProgramCounterWrapper(self.rt,
                                                        self._run_step(step, meter, started)))
            tasks.append(self.loop.create_task(coro, context=context))
        try:
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return tuple(results)

    async def _run_step(self, step: Any, meter: Meter, started: float) -> StepResult:
        base = meter.high
        totals = await start_step(self.rt, step)
        self._running.remove(step.name)
        self.clock = max(self.clock, meter.clock)
        return StepResult(step.name, tuple(int(v) for v in totals), time.monotonic() - started,
                          meter.bytes_sent, meter.high - base)
