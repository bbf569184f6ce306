"""The hospitals' agreement round: no row is read until every hospital holds the same job.

After a node admits a job and before it reads any row, it tells every other hospital of the
job "I hold job J with digest D" (:func:`agree`), and waits until every other hospital has
told it the same, over their own authenticated calls. A node answers a peer's confirmation
with whether the peer's digest equals its own (:meth:`Agreements.receive`). Any difference
stops the job at every node that sees it with :data:`MISMATCH`, a fixed text; a peer that
never confirms stops it when the peer timeout runs out. Since each hospital confirms with
every other in both directions, a coordinator that sends different jobs (a filter, a column
declaration, a threshold, a party order, ...) to different hospitals under one job id gets
nothing computed anywhere.

What a confirmation reveals: that the sender holds a job of that id with that digest, to a
hospital that is a party of the same job; nothing about rows.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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
        self._ended: OrderedDict[str, None] = OrderedDict()

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
                self._ended[job_id] = None
                while len(self._ended) > ENDED_KEPT:
                    self._ended.popitem(last=False)

    def receive(self, peer: str, job_id: str, digest: str) -> bool:
        """A confirmation from ``peer`` (authenticated by the transport): True when it holds
        the same job as this node. NotYet while this node has not received the job."""
        with self._lock:
            held = self._held.get(job_id)
            if held is None:
                if job_id in self._ended:
                    raise ProtocolError("unknown job")
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
          job_id: str, digest: str, timeout: float,
          on_cancel: Callable[[Callable[[], None]], bool]) -> Callable[[], None]:
    """Confirm ``digest`` with every other party of the job and wait for theirs.

    Returns the release of the job's hold (call it when the job ends: until then peers'
    confirmations are answered). :class:`AgreementFailed` on a mismatch, a peer silent for
    ``timeout`` seconds, or a cancelled call."""
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
        _confirm_all(links, peers, held, job_id, digest, timeout, closing)
    except BaseException:
        release()
        raise
    return release


def _confirm_all(links: PeerLinks, peers: Sequence[Party], held: _Held, job_id: str,
                 digest: str, timeout: float, closing: threading.Event) -> None:
    """Until every peer has both answered this node's confirmation and sent its own."""
    deadline = time.monotonic() + timeout
    if not peers:
        return
    with ThreadPoolExecutor(max_workers=min(len(peers), 16),
                            thread_name_prefix="agree") as pool:
        answers = [pool.submit(_confirm_one, links, p, job_id, digest, deadline, closing)
                   for p in peers]

        def answered() -> list[bool | None]:
            return [a.result() for a in answers if a.done()]

        with held.changed:
            while not held.mismatch and False not in answered() \
                    and not (len(held.confirmed) == len(peers) and all(answered())
                             and len(answered()) == len(peers)) \
                    and not closing.is_set() and time.monotonic() < deadline:
                held.changed.wait(0.05)
        mismatch = held.mismatch or False in answered()
        agreed = len(held.confirmed) == len(peers) and answered() == [True] * len(peers)
        cancelled = closing.is_set() and not agreed
        closing.set()  # the confirmations still being sent stop
    if mismatch:
        raise AgreementFailed(MISMATCH)
    if agreed:
        return
    if cancelled:
        raise AgreementFailed(CANCELLED)
    silent = sorted({p.name for p in peers if p.name not in held.confirmed}
                    | {p.name for p, a in zip(peers, answers, strict=True)
                       if a.result() is not True})
    raise AgreementFailed(f"{', '.join(silent)} did not confirm holding this job within "
                          f"{timeout:g} s; no row was read")


def _confirm_one(links: PeerLinks, peer: Party, job_id: str, digest: str, deadline: float,
                 closing: threading.Event) -> bool | None:
    """Tell ``peer`` this node's digest until it has the job: its verdict, or None."""
    pause = 0.05
    link = None
    try:
        while not closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                link = link or links.open(peer)
                return link.confirm(job_id, digest, timeout=min(left, 10.0))
            except NotYet:
                pass
            except SecureCalcError:
                # unreachable, refused, no pin or another key: try again until the deadline
                # (the round fails if the peer stays silent)
                if link is not None:
                    link.close()
                link = None
            closing.wait(pause)
            pause = min(0.5, 2 * pause)
        return None
    finally:
        if link is not None:
            link.close()


__all__ = ["CANCELLED", "MISMATCH", "AgreementFailed", "Agreements", "agree"]
