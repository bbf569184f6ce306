"""One MPC job on a node: its worker process and the gRPC streams to the other nodes.

MPyC runs in a worker process per job (so jobs cannot disturb each other and a stuck job
can be killed). This node relays the worker's messages: frames for peer j go out on one
client stream ``Exchange`` to node j; frames from node j arrive on the stream j opened to us
and are delivered to the worker as coming from j, the party its certificate names.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from securecalc.core.job import Job
from securecalc.engines.mpc.job import JobResult, MpcJob
from securecalc.engines.mpc.launcher import SparePool, WorkerHandle
from securecalc.transport.channel import create_channel
from securecalc.transport.latency import LATENCY_ENV  # development only: see that module
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

_END = object()

JOB_HEADER = "x-securecalc-job"
"""Metadata naming the job of an Exchange stream, so the receiving node can find the job (and
check the caller is one of its parties) before reading anything."""


def injected_latency() -> float:
    """Seconds of one-way latency to add to outgoing MPC frames (0 unless the env var is set)."""
    raw = os.environ.get(LATENCY_ENV, "")
    try:
        return max(0.0, float(raw) / 1000.0) if raw else 0.0
    except ValueError:
        return 0.0


class MpcSession:
    """Relays one job's frames between its worker and the peer nodes."""

    def __init__(self, job: Job, me: str, tls: TlsFiles | None, timeout: float,
                 pool: SparePool | None = None):
        self.job = job
        self.pool = pool
        self.me = me
        self.pid = job.index_of(me)
        self.tls = tls
        self.timeout = timeout
        self.peers = {i: p for i, p in enumerate(job.parties) if i != self.pid}
        self._outboxes: dict[int, queue.Queue[object]] = {i: queue.Queue() for i in self.peers}
        self._handle: WorkerHandle | None = None
        self._inbox: list[tuple[int, bytes]] = []  # frames that arrive before the worker
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._channels: list[grpc.Channel] = []
        self._latency = injected_latency()

    def peer_pid(self, name: str) -> int:
        return self.job.index_of(name)

    def peer_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.peers.values())

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
        with self._lock:
            handle = self._handle
        if handle is not None:
            handle.abort(reason)

    def run(self, mpc_job: MpcJob) -> JobResult:
        """Start the worker and the streams, relay until the worker ends, and clean up."""
        from securecalc.engines.mpc.launcher import start_worker

        handle = start_worker(mpc_job, on_frame=self._send, pool=self.pool)
        with self._lock:
            self._handle = handle
            pending, self._inbox = self._inbox, []
        for peer_pid, data in pending:
            handle.deliver(peer_pid, data)
        for peer_pid in self.peers:
            thread = threading.Thread(target=self._stream_to, args=(peer_pid,), daemon=True,
                                      name=f"mpc-{self.job.job_id[:8]}-to-{peer_pid}")
            thread.start()
            self._threads.append(thread)
        try:
            return handle.result(timeout=self.timeout)
        finally:
            handle.kill()
            for outbox in self._outboxes.values():
                outbox.put(_END)
            for thread in self._threads:
                thread.join(timeout=5)
            for channel in self._channels:
                channel.close()

    def _send(self, peer_pid: int, data: bytes) -> None:
        self._outboxes[peer_pid].put((time.monotonic() + self._latency, data))

    def _frames(self, peer_pid: int) -> Iterator[node_pb2.MpcFrame]:
        outbox = self._outboxes[peer_pid]
        while True:
            item = outbox.get()
            if item is _END:
                return
            due, data = item  # type: ignore[misc]
            delay = due - time.monotonic()
            if delay > 0:  # only with injected latency; frames keep their order
                time.sleep(delay)
            yield node_pb2.MpcFrame(job_id=self.job.job_id, data=data)

    def _stream_to(self, peer_pid: int) -> None:
        peer = self.peers[peer_pid]
        channel = create_channel(peer.address, tls=self.tls, expected_name=peer.name,
                                 own_name=self.me)
        self._channels.append(channel)
        try:
            node_pb2_grpc.PartyNodeStub(channel).Exchange(
                self._frames(peer_pid), timeout=self.timeout,
                metadata=((JOB_HEADER, self.job.job_id),))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code != grpc.StatusCode.CANCELLED:
                self.peer_lost(peer_pid, f"stream to {peer.name} at {peer.address} broke "
                                         f"({code.name if code else 'error'})")


class WaitRefused(Exception):
    """Too many streams already wait for jobs that have not arrived (from this caller or in
    total): the stream is refused at once."""


class SessionRegistry:
    """Running sessions by job id, so that inbound streams find theirs.

    A peer's stream may reach us before the coordinator's request of the same job; it may wait
    for it, but only so many may wait at a time: ``max_waiting_per_peer`` per calling party
    and ``max_waiting`` in total, so that no caller can hold the node's threads.
    """

    def __init__(self, remember_ended: int = 1024, *, max_waiting_per_peer: int = 4,
                 max_waiting: int = 16) -> None:
        self._sessions: dict[str, MpcSession] = {}
        self._ended: collections.deque[str] = collections.deque(maxlen=remember_ended)
        self._changed = threading.Condition()
        self._waiting: collections.Counter[str] = collections.Counter()
        self._max_per_peer = max_waiting_per_peer
        self._max_total = max_waiting

    def add(self, session: MpcSession) -> None:
        with self._changed:
            self._sessions[session.job.job_id] = session
            self._changed.notify_all()

    def remove(self, job_id: str) -> None:
        with self._changed:
            if self._sessions.pop(job_id, None) is not None:
                self._ended.append(job_id)
            self._changed.notify_all()

    def wait_for(self, job_id: str, caller: str, timeout: float,
                 still_wanted: Callable[[], bool] = lambda: True) -> MpcSession | None:
        """The session of ``job_id``; a peer may reach us before the coordinator does.

        None when the job already ended here, when ``timeout`` passes, or when the caller
        stops wanting it (its stream was cancelled). WaitRefused at once when the job is not
        here and ``caller`` (or everyone together) already has as many streams waiting as
        allowed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if job_id in self._sessions:
                return self._sessions[job_id]
            if (self._waiting[caller] >= self._max_per_peer
                    or sum(self._waiting.values()) >= self._max_total):
                raise WaitRefused(f"too many streams wait for jobs that have not arrived "
                                  f"(at most {self._max_per_peer} per party, "
                                  f"{self._max_total} in all)")
            self._waiting[caller] += 1
            try:
                while job_id not in self._sessions:
                    remaining = deadline - time.monotonic()
                    if job_id in self._ended or remaining <= 0 or not still_wanted():
                        return None
                    self._changed.wait(min(remaining, 0.5))
                return self._sessions[job_id]
            finally:
                self._waiting[caller] -= 1
                if not self._waiting[caller]:
                    del self._waiting[caller]
