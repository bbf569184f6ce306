"""The hospitals' agreement round: no row is read until every hospital holds the same job.

After a node admits a job and before it reads any row, it tells every other hospital of the
job "I hold job J with digest D" (:func:`agree`), and waits until every other hospital has
told it the same, over their own authenticated calls. A node answers a peer's confirmation
with whether the peer's digest equals its own (:meth:`Agreements.receive`). Any difference
stops the job at every node that sees it with :data:`MISMATCH`, a fixed text. A peer that
has received the job but is still admitting it (a large source's row check can take longer
than the peer timeout) answers "pending" and is waited for until the job's deadline; a peer
that never received the job, or cannot be reached, stops it when the peer timeout runs out.
Since each hospital confirms with every other in both directions, a coordinator that sends
different jobs (a filter, a column declaration, a threshold, a party order, ...) to different
hospitals under one job id gets nothing computed anywhere.

What a confirmation reveals: that the sender holds a job of that id with that digest (or is
admitting one of that id), to a hospital that is a party of the same job; nothing about rows.
Whether a node is still admitting a job depends on how long its row check takes, not on
what the rows hold.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from securecalc.core.party import Party
from securecalc.errors import PolicyError, ProtocolError, SecureCalcError
from securecalc.transport.interface import NotYet, PeerLinks

MISMATCH = ("the hospitals of this job were not sent the same job (their digests differ); "
            "no row was read")
"""The one message of a job that the hospitals do not agree on, at every node."""
CANCELLED = "the coordinator cancelled the job before its hospitals agreed on it"
"""Why a node stops waiting for its peers' confirmations when the coordinator's call ended
(another node refused, the coordinator gave up): a consequence of another outcome."""
#: ended jobs remembered, so a late confirmation gets "unknown job" rather than "not yet"
ENDED_KEPT = 4096
#: most jobs a node holds open for confirmation at once
OPEN_JOBS = 256


class AgreementFailed(PolicyError):
    """The hospitals of a job do not hold the same job, or one never confirmed it."""


@dataclass
class _Held:
    digest: str
    peers: frozenset[str]
    confirmed: set[str] = field(default_factory=set)
    mismatch: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)


class Agreements:
    """The jobs a node holds while their hospitals confirm them, by job id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._arriving: dict[str, int] = {}
        #: job id -> its digest and peers, for confirmations that arrive after it ended here
        self._ended: OrderedDict[str, tuple[str, frozenset[str]]] = OrderedDict()

    @contextmanager
    def arriving(self, job_id: str) -> Iterator[None]:
        """``job_id`` has reached this node and is being admitted: peers' confirmations are
        answered "pending" until it is held (or refused)."""
        with self._lock:
            self._arriving[job_id] = self._arriving.get(job_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._arriving.pop(job_id) - 1
                if left:
                    self._arriving[job_id] = left

    @contextmanager
    def hold(self, job_id: str, digest: str, peers: Sequence[str]) -> Iterator[_Held]:
        """Hold ``job_id`` with ``digest`` for the confirmations of ``peers`` while the job
        runs (peers may confirm after this node has gone on)."""
        with self._lock:
            if job_id in self._held or job_id in self._ended:
                raise ProtocolError("a job of this id already ran or runs on this node")
            if len(self._held) >= OPEN_JOBS:
                raise PolicyError(f"this node already holds {OPEN_JOBS} jobs; try again later")
            held = self._held[job_id] = _Held(digest, frozenset(peers))
        try:
            yield held
        finally:
            with self._lock:
                self._held.pop(job_id, None)
                self._ended[job_id] = (digest, frozenset(peers))
                while len(self._ended) > ENDED_KEPT:
                    self._ended.popitem(last=False)

    def receive(self, peer: str, job_id: str, digest: str) -> bool | None:
        """A confirmation from ``peer`` (authenticated by the transport): True when it holds
        the same job as this node, None while this node is still admitting the job. NotYet
        while this node has not received it."""
        with self._lock:
            held = self._held.get(job_id)
            if held is None:
                ended = self._ended.get(job_id)
                if ended is not None:  # a late peer learns whether its job was the same
                    if peer not in ended[1]:
                        raise ProtocolError("not a party of this job")
                    return digest == ended[0]
                if job_id in self._arriving:
                    return None
                raise NotYet()
        if peer not in held.peers:
            raise ProtocolError("not a party of this job")
        with held.changed:
            if digest == held.digest:
                held.confirmed.add(peer)
            else:
                held.mismatch = True
            held.changed.notify_all()
        return digest == held.digest


def agree(agreements: Agreements, links: PeerLinks, *, me: str, parties: Sequence[Party],
          job_id: str, digest: str, peer_timeout: float, deadline: float,
          on_cancel: Callable[[Callable[[], None]], bool]) -> Callable[[], None]:
    """Confirm ``digest`` with every other party of the job and wait for theirs.

    Returns the release of the job's hold (call it when the job ends: until then peers'
    confirmations are answered). :class:`AgreementFailed` on a mismatch, a peer that has not
    received the job or cannot be reached for ``peer_timeout`` seconds, ``deadline`` seconds
    passing (a peer still admitting the job), or a cancelled call."""
    peers = [p for p in parties if p.name != me]
    hold = agreements.hold(job_id, digest, [p.name for p in peers])
    held = hold.__enter__()
    closing = threading.Event()

    def release() -> None:
        closing.set()
        hold.__exit__(None, None, None)

    def cancel() -> None:
        closing.set()
        with held.changed:
            held.changed.notify_all()

    try:
        if not on_cancel(cancel):
            cancel()
        _Round(links, peers, held, job_id, digest, peer_timeout,
               time.monotonic() + max(deadline, peer_timeout), closing).run()
    except BaseException:
        release()
        raise
    return release


@dataclass
class _Round:
    """One node's side of the agreement round of one job."""

    links: PeerLinks
    peers: Sequence[Party]
    held: _Held
    job_id: str
    digest: str
    peer_timeout: float
    deadline: float
    closing: threading.Event

    def run(self) -> None:
        """Until every peer has both answered this node's confirmation and sent its own."""
        if not self.peers:
            return
        with ThreadPoolExecutor(max_workers=min(len(self.peers), 16),
                                thread_name_prefix="agree") as pool:
            answers = [pool.submit(self._confirm, p) for p in self.peers]
            for answer in answers:  # an answer wakes the wait at once
                answer.add_done_callback(lambda _: self._wake())
            outcome = self._wait(answers)
            self.closing.set()  # the confirmations still being sent stop
        if outcome == "agreed":
            return
        if outcome == "mismatch":
            raise AgreementFailed(MISMATCH)
        if outcome == "cancelled":
            raise AgreementFailed(CANCELLED)
        silent = sorted({p.name for p in self.peers if p.name not in self.held.confirmed}
                        | {p.name for p, a in zip(self.peers, answers, strict=True)
                           if not (a.done() and a.result() is True)})
        raise AgreementFailed(f"{', '.join(silent)} did not confirm holding this job in time "
                              f"(a peer that has not received it is waited for "
                              f"{self.peer_timeout:g} s); no row was read")

    def _wake(self) -> None:
        with self.held.changed:
            self.held.changed.notify_all()

    def _wait(self, answers: list[Future[bool | None]]) -> str:
        held, n = self.held, len(self.peers)
        answered_at: float | None = None
        with held.changed:
            while True:
                answered = [a.result() for a in answers if a.done()]
                if held.mismatch or False in answered:
                    return "mismatch"
                everyone = len(answered) == n and all(answered)
                if everyone and len(held.confirmed) == n:
                    return "agreed"
                if self.closing.is_set():  # before "silent": a cancelled confirmation is None
                    return "cancelled"
                if everyone:
                    answered_at = answered_at or time.monotonic()
                    if time.monotonic() - answered_at > self.peer_timeout:
                        return "silent"  # they hold our job but never told us so
                elif len(answered) == n:
                    return "silent"
                if time.monotonic() > self.deadline:
                    return "silent"
                held.changed.wait(0.05)

    def _confirm(self, peer: Party) -> bool | None:
        """Tell ``peer`` this node's digest until it holds the job: its verdict, or None
        (silent, unreachable or refusing for the peer timeout, or out of time)."""
        pause = 0.005
        link = None
        heard = time.monotonic()  # when the peer last showed it has the job
        try:
            while not self.closing.is_set():
                now = time.monotonic()
                if now > self.deadline or now - heard > self.peer_timeout:
                    return None
                try:
                    link = link or self.links.open(peer)
                    verdict = link.confirm(self.job_id, self.digest,
                                           timeout=max(1.0, min(self.deadline - now, 10.0)))
                    if verdict is not None:
                        return verdict
                    heard = time.monotonic()  # it is admitting the job: wait for it
                except NotYet:
                    pass
                except SecureCalcError:
                    # unreachable, refused, no pin or another key: again until the timeout
                    if link is not None:
                        link.close()
                    link = None
                self.closing.wait(pause)
                pause = min(0.5, 2 * pause, self.peer_timeout / 4)
            return None
        finally:
            if link is not None:
                link.close()


__all__ = ["CANCELLED", "MISMATCH", "AgreementFailed", "Agreements", "agree"]
