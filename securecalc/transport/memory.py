"""The interface in one process: calls routed between role objects, for fast tests.

:class:`MemoryNetwork` holds hospital nodes (:class:`PartyNode`) and compute nodes
(:class:`Aggregator`) by name and hands each call the :class:`Caller` a certificate would
give (name and role). It keeps the gRPC transport's semantics where the roles can tell:
jobs go through the job codec (the same limits and checks), errors reach the caller as
:func:`securecalc.transport.errors.relayed` makes them (the same kinds and messages), calls
take their deadlines from the study's clock, a fan-out fails at the first failure and
cancels the other calls, and a party taken down (:meth:`MemoryNetwork.stop`) is unreachable,
or lost while a call runs. MPC frames go from one node's session to the other's in process;
the MPyC workers remain real worker processes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from securecalc.compute.aggregator import Aggregator
from securecalc.core.config import NodeConfig, Party
from securecalc.core.job import Job
from securecalc.core.limits import CKKS_CIPHERTEXT, CKKS_SUM
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import PartyError, SecureCalcError
from securecalc.node.party import PartyNode
from securecalc.node.server import open_node
from securecalc.roles import Role
from securecalc.transport import chunks
from securecalc.transport.codec import job_from_proto, job_to_proto
from securecalc.transport.devhooks import outgoing_frame_delay
from securecalc.transport.errors import relayed
from securecalc.transport.interface import (
    GRACE_SECONDS,
    Caller,
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
from securecalc.transport.messages import states_from_json, states_to_json
from securecalc.transport.tls import TlsFiles

T = TypeVar("T")
_POLL = 0.05
COORDINATOR = Caller("coordinator", Role.COORDINATOR)


class MemoryCall:
    """One call in progress (a :class:`~securecalc.transport.interface.CallContext`)."""

    def __init__(self, timeout: float | None):
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._callbacks: list[Callable[[], None]] = []
        self._ended = False
        self._lock = threading.Lock()

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def on_end(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._callbacks.append(callback)
            return True

    def is_active(self) -> bool:
        with self._lock:
            active = not self._ended
        return active and (self.deadline is None or time.monotonic() < self.deadline)

    def end(self) -> None:
        """The call ended (done, failed or cancelled): run its callbacks once."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class MemoryNetwork:
    """Hospital and compute nodes of one process, reachable by name."""

    def __init__(self) -> None:
        self.nodes: dict[str, PartyNode] = {}
        self.computes: dict[str, Aggregator] = {}
        self.stopped: set[str] = set()

    def add_node(self, config: NodeConfig, role: Role = Role.HOSPITAL) -> PartyNode:
        """Open the node of ``config`` (as ``node serve`` would) and make it reachable; it
        calls others with the identity of a certificate naming it with ``role``."""
        identity = Caller(config.name, role)
        node = open_node(config, links=MemoryPeerLinks(self, identity),
                         submitter=MemorySubmitter(self, identity))
        self.nodes[config.name] = node
        return node

    def add_compute(self, name: str, aggregator: Aggregator) -> Aggregator:
        self.computes[name] = aggregator
        return aggregator

    def stop(self, name: str) -> None:
        """Party ``name`` stops answering: new calls find it unreachable, running calls
        lose it."""
        self.stopped.add(name)

    def connect(self, tls: TlsFiles | None, clock: StudyClockLike, *,
                caller: Caller = COORDINATOR) -> MemoryStudyNetwork:
        """A coordinator's network (a :class:`~securecalc.transport.interface.Connect`);
        ``caller``: the identity its certificate would give (``tls`` is not used)."""
        return MemoryStudyNetwork(self, clock, caller)

    def node(self, party: Party) -> PartyNode:
        return self._reach(party, self.nodes)

    def compute(self, party: Party) -> Aggregator:
        return self._reach(party, self.computes)

    def _reach(self, party: Party, where: dict[str, T]) -> T:
        found = where.get(party.name)
        if found is None or party.name in self.stopped:
            raise PartyError(party.name, f"unreachable at {party.address}: connection refused: "
                                         "nothing listens there (not running, or moved)")
        return found


def invoke(party: Party, call: Callable[[], T]) -> T:
    """``call`` made on ``party``, its errors as the caller sees them."""
    try:
        return call()
    except PartyError as exc:
        if exc.party == party.name and "unreachable at" in str(exc):
            raise  # not reached: nothing ran there
        raise relayed(exc, party=party.name) from exc
    except Exception as exc:
        raise relayed(exc, party=party.name) from exc


def wire_job(job: Job, engine: str) -> Job:
    """``job`` as a node decodes it off the wire (the codec's limits and checks)."""
    return job_from_proto(job_to_proto(job), engine)


class MemoryStudyNetwork:
    """A coordinator's calls during one study, routed in process."""

    def __init__(self, network: MemoryNetwork, clock: StudyClockLike, caller: Caller):
        self.network = network
        self.clock = clock
        self.caller = caller

    def check(self, parties: Sequence[Party]) -> None:
        self.clock.remaining(self.clock.peer_timeout)
        for party in parties:
            if party.name not in self.network.computes:
                self.network.node(party)

    def run_mpc(self, parties: Sequence[Party], request: MpcRequest) -> dict[str, MpcReply]:
        def run(party: Party, context: MemoryCall) -> MpcReply:
            node = self.network.node(party)
            job = node.receive_job(self.caller, "mpc", request.job.job_id,
                                   lambda: wire_job(request.job, "mpc"))
            return node.run_mpc(self.caller, MpcRequest(job, request.peer_timeout_seconds),
                                context)

        return self._fan_out(parties, run, watched=parties)

    def run_ckks(self, parties: Sequence[Party],
                 request: CkksRequest) -> dict[str, CkksReply]:
        def run(party: Party, context: MemoryCall) -> CkksReply:
            node = self.network.node(party)
            job = node.receive_job(self.caller, "ckks", request.job.job_id,
                                   lambda: wire_job(request.job, "ckks"))
            states = states_from_json(states_to_json(request.states))
            return node.run_ckks(self.caller, CkksRequest(
                job=job, compute=request.compute, params=request.params,
                n_values=request.n_values, public_context=request.public_context,
                states=states, peer_timeout_seconds=request.peer_timeout_seconds), context)

        return self._fan_out(parties, run, watched=[*parties, request.compute])

    def store_heads(self, parties: Sequence[Party], request: HeadsRequest) -> None:
        self._fan_out(parties, lambda party, _: self.network.node(party).store_heads(
            self.caller, request), watched=(), at_most=self.clock.peer_timeout)

    def _fan_out(self, parties: Sequence[Party], call: Callable[[Party, MemoryCall], T], *,
                 watched: Sequence[Party], at_most: float | None = None) -> dict[str, T]:
        """Every call at once, each in a thread; the first failure (or a watched party
        stopped) ends the others, as over gRPC."""
        timeout = self.clock.remaining(at_most)
        done: queue.Queue[tuple[str, bool, Any]] = queue.Queue()
        calls: dict[str, MemoryCall] = {}

        def run(party: Party, context: MemoryCall) -> None:
            try:
                outcome: tuple[bool, Any] = (True, invoke(party, lambda: call(party, context)))
            except BaseException as exc:
                outcome = (False, exc)
            context.end()
            done.put((party.name, *outcome))

        for party in parties:
            calls[party.name] = MemoryCall(timeout)
            threading.Thread(target=run, args=(party, calls[party.name]), daemon=True,
                             name=f"memory-call-{party.name}").start()
        results: dict[str, T] = {}
        try:
            while len(results) < len(calls):
                waiting = ", ".join(sorted(set(calls) - set(results)))
                lost = [p for p in watched if p.name in self.network.stopped]
                if lost:
                    raise PartyError(lost[0].name, f"stopped answering at {lost[0].address}: "
                                     "no answer to keepalive pings (frozen, crashed or cut off)")
                try:
                    name, ok, value = done.get(timeout=_POLL)
                except queue.Empty:
                    if self.clock.left() < -GRACE_SECONDS:
                        raise self.clock.expired(waiting) from None
                    continue
                if not ok:
                    if self.clock.over:
                        raise self.clock.expired(waiting) from value
                    if name in self.network.stopped:  # a stopped party's answer never comes
                        party = next(p for p in parties if p.name == name)
                        raise PartyError(name, f"stopped answering at {party.address}: no "
                                         "answer to keepalive pings (frozen, crashed or cut "
                                         "off)") from value
                    raise value
                results[name] = value
        finally:
            for context in calls.values():
                context.end()  # cancels the calls still running
        return results

    def _prompt(self, party: Party, call: Callable[[MemoryCall], T]) -> T:
        """One call that should answer promptly: within peer_timeout_seconds."""
        context = MemoryCall(self.clock.remaining(self.clock.peer_timeout))
        try:
            return invoke(party, lambda: call(context))
        except SecureCalcError as exc:
            if self.clock.over:
                raise self.clock.expired(party.name) from exc
            raise
        finally:
            context.end()

    def open_job(self, compute: Party, request: OpenJob) -> None:
        self._prompt(compute, lambda _: self.network.compute(compute).open_job(self.caller,
                                                                               request))

    def fetch_sum(self, compute: Party, job_id: str, layout: Layout) -> list[bytes]:
        def fetch(context: MemoryCall) -> list[bytes]:
            total = self.network.compute(compute).fetch_sum(
                self.caller, job_id, context.time_remaining() or 0.0, context)
            return chunks.join_indexed(enumerate(total), layout.n_ciphertexts,
                                       max_each=CKKS_SUM.value, max_total=CKKS_SUM.value)

        return self._prompt(compute, fetch)

    def checkpoint(self, compute: Party, job_id: str) -> str:
        return self._prompt(compute, lambda _: self.network.compute(compute).checkpoint(
            self.caller))

    def close_job(self, compute: Party, job_id: str) -> None:
        try:
            self._prompt(compute, lambda _: self.network.compute(compute).close_job(
                self.caller, job_id))
        except SecureCalcError:
            pass

    def close(self) -> None:
        pass

    def __enter__(self) -> MemoryStudyNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryPeerLinks:
    """A node's MPC streams to its peers, in process."""

    def __init__(self, network: MemoryNetwork, me: Caller):
        self.network = network
        self.me = me
        self.frame_delay = outgoing_frame_delay()

    def open(self, peer: Party) -> MemoryPeerLink:
        return MemoryPeerLink(self.network, self.me, peer)


class MemoryPeerLink:
    def __init__(self, network: MemoryNetwork, caller: Caller, peer: Party):
        self.network = network
        self.caller = caller
        self.peer = peer

    def stream(self, job_id: str, frames: Callable[[], Iterator[bytes]], *, timeout: float,
               closing: threading.Event) -> str | None:
        broke = f"stream to {self.peer.name} at {self.peer.address} broke"
        pause = 0.05
        while not closing.is_set():
            try:
                inbound = self.network.node(self.peer).accept_stream(self.caller, job_id)
            except NotYet:
                closing.wait(pause)
                pause = min(0.5, 2 * pause)
                continue
            except PartyError:
                return f"{broke} (UNAVAILABLE)"
            except SecureCalcError as exc:
                return f"{broke} ({type(exc).__name__})"
            for data in frames():
                if self.peer.name in self.network.stopped or self.caller.name in \
                        self.network.stopped:
                    inbound.lost(f"the stream from {self.caller.name} broke")
                    return f"{broke} (UNAVAILABLE)"
                inbound.deliver(data)
            return None
        return None

    def confirm(self, job_id: str, digest: str, *, timeout: float) -> bool | None:
        try:
            return self.network.node(self.peer).confirm(self.caller, job_id, digest)
        except (NotYet, PartyError):
            raise
        except SecureCalcError as exc:
            raise PartyError(self.peer.name, f"confirmation refused ({type(exc).__name__})") \
                from None

    def close(self) -> None:
        pass


class MemorySubmitter:
    """A site's submissions to the compute node, in process."""

    def __init__(self, network: MemoryNetwork, me: Caller):
        self.network = network
        self.caller = me

    def submit(self, compute: Party, submission: Submission, *, timeout: float,
               on_cancel: Callable[[Callable[[], None]], bool]) -> None:
        def send() -> None:
            aggregator = self.network.compute(compute)
            layout = aggregator.accept(self.caller, submission.job_id)
            ciphertexts = chunks.join_indexed(enumerate(submission.ciphertexts),
                                              layout.n_ciphertexts,
                                              max_each=CKKS_CIPHERTEXT.value)
            aggregator.submit(self.caller, Submission(submission.job_id, tuple(ciphertexts),
                                                      submission.signature))

        invoke(compute, send)


__all__ = ["COORDINATOR", "MemoryCall", "MemoryNetwork", "MemoryStudyNetwork"]
