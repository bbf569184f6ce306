"""One MPC job on a node: its worker process and the streams to the other nodes.

MPyC runs in a worker process per job (so jobs cannot disturb each other and a stuck job
can be killed). This node relays the worker's messages: frames for peer j go out on one
stream to node j (a :class:`~securecalc.transport.interface.PeerLink`); frames from node j
arrive on the stream j opened to us and are delivered to the worker as coming from j, the
party its certificate names.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Iterator
from typing import cast

from securecalc.core.job import Job
from securecalc.engines.mpc.launcher import SparePool, WorkerHandle
from securecalc.engines.mpc.task import JobResult, MpcJob
from securecalc.transport.interface import NOT_YET, Inbound, PeerLink, PeerLinks

_END = object()

__all__ = ["NOT_YET", "MpcSession", "SessionRegistry"]


class MpcSession:
    """Relays one job's frames between its worker and the peer nodes."""

    def __init__(self, job: Job, me: str, links: PeerLinks, timeout: float,
                 pool: SparePool | None = None):
        self.job = job
        self.pool = pool
        self.me = me
        self.pid = job.index_of(me)
        self.links = links
        self.timeout = timeout
        self.peers = {i: p for i, p in enumerate(job.parties) if i != self.pid}
        self._outboxes: dict[int, queue.Queue[object]] = {i: queue.Queue() for i in self.peers}
        self._handle: WorkerHandle | None = None
        self._inbox: list[tuple[int, bytes]] = []  # frames that arrive before the worker
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._links: list[PeerLink] = []
        self._latency = links.frame_delay  # development hooks only: 0 in production
        self._closing = threading.Event()
        self._aborted: str | None = None  # why, when asked to abort before the worker started

    def peer_pid(self, name: str) -> int:
        return self.job.index_of(name)

    def peer_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.peers.values())

    def inbound(self, peer: str) -> Inbound:
        """Where the frames of ``peer``'s stream to this node go."""
        return _Inbound(self, self.peer_pid(peer))

    def deliver(self, peer_pid: int, data: bytes) -> None:
        with self._lock:
            if self._handle is None:
                self._inbox.append((peer_pid, data))
                return
            handle = self._handle
        handle.deliver(peer_pid, data)

    def peer_lost(self, peer_pid: int, reason: str) -> None:
        with self._lock:
            handle = self._handle
        if handle is not None:
            handle.peer_lost(peer_pid, reason)

    def abort(self, reason: str) -> None:
        """Stop the job; asked before the worker started, the worker does not start."""
        with self._lock:
            handle = self._handle
            if handle is None and self._aborted is None:
                self._aborted = reason
        if handle is not None:
            handle.abort(reason)

    def run(self, mpc_job: MpcJob) -> JobResult:
        """Start the worker and the streams, relay until the worker ends, and clean up."""
        from securecalc.engines.mpc.launcher import failure_error, start_worker

        with self._lock:
            if self._aborted is not None:  # the coordinator cancelled during local work
                raise failure_error(mpc_job, "aborted", self._aborted, None)
        handle = start_worker(mpc_job, on_frame=self._send, pool=self.pool)
        with self._lock:
            self._handle = handle
            pending, self._inbox = self._inbox, []
            aborted = self._aborted  # asked while the worker was starting
        if aborted is not None:
            handle.abort(aborted)
        for peer_pid, data in pending:
            handle.deliver(peer_pid, data)
        for peer_pid in self.peers:
            thread = threading.Thread(target=self._stream_to, args=(peer_pid,), daemon=True,
                                      name=f"mpc-{self.job.job_id[:8]}-to-{peer_pid}")
            thread.start()
            self._threads.append(thread)
        drain = 1.0  # a failed job's last frames (ABORT) to the peers still there
        try:
            result = handle.result(timeout=self.timeout)
            drain = 5.0  # the final BYE must reach every peer
            return result
        finally:
            self._closing.set()
            handle.kill()
            for outbox in self._outboxes.values():
                outbox.put(_END)
            end = time.monotonic() + drain
            for thread in self._threads:
                thread.join(timeout=max(0.0, end - time.monotonic()))
            for link in self._links:
                link.close()

    def _send(self, peer_pid: int, data: bytes) -> None:
        self._outboxes[peer_pid].put((time.monotonic() + self._latency, data))

    def _frames(self, peer_pid: int) -> Iterator[bytes]:
        outbox = self._outboxes[peer_pid]
        while True:
            item = outbox.get()
            if item is _END:
                return
            due, data = cast(tuple[float, bytes], item)
            delay = due - time.monotonic()
            if delay > 0:  # only with development hooks; frames keep their order
                time.sleep(delay)
            yield data

    def _stream_to(self, peer_pid: int) -> None:
        """Relay frames to ``peer_pid`` over a link (which waits until that node has received
        the job); a broken stream tells the worker the peer is lost."""
        link = self.links.open(self.peers[peer_pid])
        self._links.append(link)
        broken = link.stream(self.job.job_id, lambda: self._frames(peer_pid),
                             timeout=self.timeout, closing=self._closing)
        if broken is not None:
            self.peer_lost(peer_pid, broken)


class _Inbound:
    def __init__(self, session: MpcSession, peer_pid: int):
        self._session = session
        self._pid = peer_pid

    def deliver(self, data: bytes) -> None:
        self._session.deliver(self._pid, data)

    def lost(self, reason: str) -> None:
        self._session.peer_lost(self._pid, reason)


class SessionRegistry:
    """Running sessions by job id, so that inbound streams find theirs (and the ids of jobs
    that ended, so that a late stream is told so)."""

    def __init__(self, remember_ended: int = 1024) -> None:
        self._sessions: dict[str, MpcSession] = {}
        self._ended: collections.deque[str] = collections.deque(maxlen=remember_ended)
        self._lock = threading.Lock()

    def add(self, session: MpcSession) -> None:
        with self._lock:
            self._sessions[session.job.job_id] = session

    def remove(self, job_id: str) -> None:
        with self._lock:
            if self._sessions.pop(job_id, None) is not None:
                self._ended.append(job_id)

    def get(self, job_id: str) -> MpcSession | None:
        with self._lock:
            return self._sessions.get(job_id)

    def ended(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._ended
