"""The agreement round between hospitals, on its own: three nodes' registries linked in process.

Each node runs :func:`agree` in a thread of its own; a link calls the peer's registry as the
peer's servicer would (the transport's authentication is tested with real processes in
tests/system and tests/adversary).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest

from securecalc.core.party import Party
from securecalc.errors import SecureCalcError
from securecalc.node.agreement import MISMATCH, Agreements, agree

pytestmark = pytest.mark.timeout(60)

PARTIES = tuple(Party(n, f"127.0.0.1:{7000 + i}") for i, n in enumerate("abc"))


class Link:
    def __init__(self, me: str, peer: Agreements):
        self.me, self.peer = me, peer

    def stream(self, *args: object, **kwargs: object) -> str | None:
        raise NotImplementedError

    def confirm(self, job_id: str, digest: str, *, timeout: float) -> bool | None:
        return self.peer.receive(self.me, job_id, digest)

    def close(self) -> None:
        pass


class Links:
    frame_delay = 0.0

    def __init__(self, me: str, nodes: Mapping[str, Agreements]):
        self.me, self.nodes = me, nodes

    def open(self, peer: Party) -> Link:
        return Link(self.me, self.nodes[peer.name])


def never_cancelled(_: Callable[[], None]) -> bool:
    return True


def run(nodes: dict[str, Agreements], digests: Mapping[str, str], *, peer_timeout: float = 2.0,
        deadline: float = 20.0, late: Mapping[str, float] | None = None,
        admitting: Mapping[str, float] | None = None) -> dict[str, str]:
    """Each node of ``digests`` agrees on job "j" (``late``: starts after that many seconds;
    ``admitting``: is seen admitting the job that long first); what each ended with."""
    outcome: dict[str, str] = {}

    def one(name: str) -> None:
        time.sleep((late or {}).get(name, 0.0))
        with nodes[name].arriving("j"):
            time.sleep((admitting or {}).get(name, 0.0))
            try:
                release = agree(nodes[name], Links(name, nodes), me=name, parties=PARTIES,
                                job_id="j", digest=digests[name], peer_timeout=peer_timeout,
                                deadline=deadline, on_cancel=never_cancelled)
            except SecureCalcError as exc:
                outcome[name] = str(exc)
                return
        outcome[name] = "agreed"
        time.sleep(0.5)  # the job runs: peers' late confirmations are still answered
        release()

    threads = [threading.Thread(target=one, args=(n,)) for n in digests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


@contextmanager
def three() -> Iterator[dict[str, Agreements]]:
    yield {p.name: Agreements() for p in PARTIES}


def test_the_same_job_everywhere_is_agreed() -> None:
    with three() as nodes:
        assert run(nodes, {"a": "d" * 64, "b": "d" * 64, "c": "d" * 64}) == {
            "a": "agreed", "b": "agreed", "c": "agreed"}


def test_one_different_job_stops_it_everywhere_with_one_message() -> None:
    with three() as nodes:
        outcome = run(nodes, {"a": "d" * 64, "b": "d" * 64, "c": "e" * 64})
    assert outcome == {"a": MISMATCH, "b": MISMATCH, "c": MISMATCH}


def test_a_hospital_that_never_gets_the_job_stops_it_after_the_peer_timeout() -> None:
    with three() as nodes:
        started = time.monotonic()
        outcome = run(nodes, {"a": "d" * 64, "b": "d" * 64}, peer_timeout=1.0)
    assert all("c did not confirm holding this job in time" in v for v in outcome.values())
    assert time.monotonic() - started < 15  # the peer timeout, not the deadline


def test_a_hospital_still_admitting_the_job_is_waited_for_past_the_peer_timeout() -> None:
    """A large source's row check may outlast the peer timeout: the node answers "pending"
    and its peers wait for it (until the job's deadline)."""
    with three() as nodes:
        outcome = run(nodes, {"a": "d" * 64, "b": "d" * 64, "c": "d" * 64}, peer_timeout=0.5,
                      admitting={"c": 2.0})
    assert outcome == {"a": "agreed", "b": "agreed", "c": "agreed"}


def test_a_job_id_is_agreed_once() -> None:
    with three() as nodes:
        run(nodes, {"a": "d" * 64, "b": "d" * 64, "c": "d" * 64})
        again = run(nodes, {"a": "d" * 64, "b": "d" * 64, "c": "d" * 64}, peer_timeout=0.5)
    assert all("already ran" in v for v in again.values())


def test_a_cancelled_call_stops_the_round_as_cancelled_not_silent() -> None:
    """The coordinator cancels a node's call (another node refused): its confirmations stop,
    and the node says it was cancelled, whatever its confirmations had heard so far."""
    from securecalc.node.agreement import CANCELLED

    nodes = {p.name: Agreements() for p in PARTIES}
    cancels: list[Callable[[], None]] = []

    def on_cancel(callback: Callable[[], None]) -> bool:
        cancels.append(callback)
        return True

    threading.Timer(0.3, lambda: cancels[0]()).start()
    with pytest.raises(SecureCalcError) as info:
        agree(nodes["a"], Links("a", nodes), me="a", parties=PARTIES, job_id="j",
              digest="d" * 64, peer_timeout=10.0, deadline=20.0, on_cancel=on_cancel)
    assert str(info.value) == CANCELLED


@pytest.mark.parametrize("seconds", [float("nan"), -1.0, 1e9])
def test_a_malformed_peer_timeout_is_refused_on_every_engine(seconds: float) -> None:
    """The coordinator's peer timeout bounds the round (and the MPC worker): a node refuses
    NaN, a negative or an endless one, whichever engine the job is for."""
    from securecalc.errors import ProtocolError
    from securecalc.node.party import _peer_timeout

    with pytest.raises(ProtocolError, match="malformed peer timeout"):
        _peer_timeout(seconds)
    assert _peer_timeout(0.0) == 15.0 and _peer_timeout(3.0) == 3.0
