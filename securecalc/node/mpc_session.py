"""One MPC job on a node: its worker process and the gRPC streams to the other nodes.

MPyC runs in a worker process per job (so jobs cannot disturb each other and a stuck job
can be killed). This node relays the worker's messages: frames for peer j go out on one
client stream ``Exchange`` to node j; frames from node j arrive on the stream j opened to us
and are delivered to the worker as coming from j, the party its certificate names.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Iterator

import grpc

from securecalc.core.job import Job
from securecalc.engines.mpc.job import JobResult, MpcJob
from securecalc.engines.mpc.launcher import SparePool, WorkerHandle
from securecalc.transport.channel import create_channel
from securecalc.transport.devhooks import outgoing_frame_delay
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

_END = object()

JOB_HEADER = "x-securecalc-job"
"""Metadata naming the job of an Exchange stream, so the receiving node can find the job (and
check the caller is one of its parties) before reading anything."""
ACCEPTED_HEADER = "x-securecalc-accepted"
"""Initial metadata by which the receiving node accepts an Exchange stream."""
NOT_YET = "the job has not reached this node yet"
"""FAILED_PRECONDITION details of a stream that came before its job: the sender tries again."""


LATENCY_ENV = "SECURECALC_DEV_LATENCY_MS"
"""Compatibility name for tests/system only (read by ``securecalc_bench.latency``, not here)."""


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
        self._latency = outgoing_frame_delay()  # development hooks only: 0 in production
        self._closing = threading.Event()
        self._aborted: str | None = None  # why, when asked to abort before the worker started

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
            for channel in self._channels:
                channel.close()

    def _send(self, peer_pid: int, data: bytes) -> None:
        self._outboxes[peer_pid].put((time.monotonic() + self._latency, data))

    def _frames(self, peer_pid: int, gate: _Gate) -> Iterator[node_pb2.MpcFrame]:
        if not gate.wait():  # refused (not here yet): the frames wait for the next stream
            return
        outbox = self._outboxes[peer_pid]
        while True:
            item = outbox.get()
            if item is _END:
                return
            due, data = item  # type: ignore[misc]
            delay = due - time.monotonic()
            if delay > 0:  # only with development hooks; frames keep their order
                time.sleep(delay)
            yield node_pb2.MpcFrame(job_id=self.job.job_id, data=data)

    def _stream_to(self, peer_pid: int) -> None:
        """Open the stream to ``peer_pid`` and relay frames on it. While that node has not
        received the job from the coordinator, it refuses the stream at once and we try again
        shortly; no frame is sent before it accepts."""
        peer = self.peers[peer_pid]
        channel = create_channel(peer.address, tls=self.tls, expected_name=peer.name,
                                 own_name=self.me)
        self._channels.append(channel)
        stub = node_pb2_grpc.PartyNodeStub(channel)
        pause = 0.05
        while not self._closing.is_set():
            gate = _Gate()
            call = stub.Exchange.future(self._frames(peer_pid, gate), timeout=self.timeout,
                                        metadata=((JOB_HEADER, self.job.job_id),))
            gate.decide(dict(call.initial_metadata() or ()).get(ACCEPTED_HEADER) == "1")
            try:
                call.result()
                return
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.FAILED_PRECONDITION and exc.details() == NOT_YET:
                    self._closing.wait(pause)
                    pause = min(0.5, 2 * pause)
                    continue
                if code != grpc.StatusCode.CANCELLED:
                    self.peer_lost(peer_pid, f"stream to {peer.name} at {peer.address} broke "
                                             f"({code.name if code else 'error'})")
                return
            finally:
                gate.decide(False)


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
