"""Start an MPC worker process and talk to it from the node (no mpyc imported here).

Typical use in a gRPC node::

    handle = start_worker(job, on_frame=lambda peer, data: streams[peer].put(data))
    # for every frame arriving on the stream from authenticated peer p:
    handle.deliver(p, data)
    # when the stream with peer p breaks:
    handle.peer_lost(p, "stream closed")
    result = handle.result()          # JobResult, or raises a SecureCalcError

Without ``on_frame``, pump frames with ``handle.recv()`` / ``for peer, data in
handle.outgoing()``. ``on_frame`` and ``on_done`` run on the handle's reader thread (possibly
before ``start_worker`` returns) and must not block: enqueue and return. Per peer, relay
frames in order, each as one message, over that peer's mTLS stream only. Keep relaying a
finished worker's last frames (its final BYE is what lets the peers finish), then close the
job's streams: a peer that has the BYE treats the close as the normal end, any other peer
fails at once with :class:`PartyError` naming this party.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from securecalc.engines.mpc.task import JobResult, MpcJob
from securecalc.engines.mpc.worker import run_spare, run_worker
from securecalc.errors import (
    ConfigError,
    DataError,
    PartyError,
    ProtocolError,
    SecureCalcError,
)

log = logging.getLogger(__name__)
_SPAWN = multiprocessing.get_context("spawn")

FrameCallback = Callable[[int, bytes], None]
DoneCallback = Callable[["WorkerHandle"], None]


def failure_error(job: MpcJob, kind: str, message: str, peer: int | None) -> SecureCalcError:
    """Map a worker's ``("failed", kind, message, peer)`` report to our exception tree."""
    if kind == "party_lost" or (kind == "timeout" and peer is not None):
        return PartyError(job.party_name(peer), message)
    if kind == "input":
        return DataError(message)
    if kind == "config":
        return ConfigError(message)
    if kind == "protocol":
        who = "" if peer is None else f"party {job.party_name(peer)!r}: "
        return ProtocolError(who + message)
    if kind == "internal":  # an exception's text may quote this node's data: keep it here
        log.error("MPC job %r failed: %s", job.job_id, message)
        return SecureCalcError(f"MPC job {job.job_id!r} failed (internal error; details are "
                               "in this node's log)")
    return SecureCalcError(f"MPC job {job.job_id!r} failed ({kind}): {message}")


class WorkerHandle:
    """The node's handle on one worker process. Sending methods are thread-safe."""

    def __init__(self, job: MpcJob, process: Any, conn: Any, on_frame: FrameCallback | None,
                 on_done: DoneCallback | None, kill_grace: float):
        self.job = job
        self.frames_sent = 0
        self.bytes_sent = 0
        self.started_at = time.monotonic()
        self.finished_at: float | None = None  # time.monotonic() when the outcome was known
        self._proc, self._conn = process, conn
        self._exitcode: int | None = None  # once reaped, when the process object is dropped
        self._on_frame, self._on_done = on_frame, on_done
        self._lock = threading.Lock()  # serialises sends to the worker
        self._proc_lock = threading.Lock()  # serialises waitpid on the worker
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()  # None: the end
        self._finished = threading.Event()
        self._result: JobResult | None = None
        self._error: SecureCalcError | None = None
        self._why_killed: str | None = None
        # by weak reference, as are the callbacks dropped once the job is done: a finished
        # handle is then freed at once with its process object and that object's pipe, not
        # whenever the garbage collector next breaks reference cycles
        self._timer = threading.Timer(job.job_timeout + kill_grace, _overdue,
                                      (weakref.ref(self),))
        self._timer.daemon = True
        self._timer.start()
        threading.Thread(target=self._pump, daemon=True,
                         name=f"mpc-worker-{job.job_id}-{job.pid}").start()

    # -------------------------------------------------------------- node -> worker
    def deliver(self, peer_pid: int, data: bytes) -> bool:
        """Hand a frame from authenticated peer ``peer_pid`` to the worker."""
        return self._send(("in", peer_pid, data))

    def peer_lost(self, peer_pid: int, reason: str) -> bool:
        """The stream with ``peer_pid`` broke: the worker fails at once unless that peer is done."""
        return self._send(("lost", peer_pid, reason))

    def abort(self, reason: str) -> bool:
        """Ask the worker to stop; it tells its peers and reports ``failed``/``aborted``."""
        return self._send(("abort", reason))

    def _send(self, msg: tuple[Any, ...]) -> bool:
        with self._lock:
            if self._finished.is_set():
                return False
            try:
                self._conn.send(msg)
                return True
            except (OSError, ValueError):
                return False

    # -------------------------------------------------------------- worker -> node
    def recv(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        """Next outgoing ``(peer_pid, frame)``; ``None`` once the worker has finished.

        Raises ``TimeoutError`` if nothing comes within ``timeout`` seconds. Not for use
        together with ``on_frame``.
        """
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no frame from the MPC worker") from None
        if item is None:
            self._queue.put(None)
        return item

    def outgoing(self) -> Iterator[tuple[int, bytes]]:
        """Iterate over outgoing frames until the worker finishes."""
        while (item := self.recv()) is not None:
            yield item

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the job; return its result or raise the mapped :class:`SecureCalcError`."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"MPC job {self.job.job_id!r} still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def error(self, timeout: float | None = None) -> SecureCalcError | None:
        """Wait for the job; return its error, or ``None`` if it succeeded."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"MPC job {self.job.job_id!r} still running")
        return self._error

    # ------------------------------------------------------------------ lifecycle
    def kill(self, reason: str = "killed by the node") -> None:
        """Kill the worker process now (its peers will notice the silence or a lost stream)."""
        if self._why_killed is None:
            self._why_killed = reason
        with self._proc_lock:
            if self._reap() is None:
                self._proc.kill()

    def join(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit; return its exit code (``None`` if still running)."""
        # Poll under a lock: concurrent Process.join() calls race on waitpid and may report
        # a finished process as still running.
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._proc_lock:
                code = self._reap()
            if code is not None or (end is not None and time.monotonic() >= end):
                return code
            time.sleep(0.02)

    def _reap(self) -> int | None:
        """The exit code once the process has ended (call with ``_proc_lock`` held). The
        process object is then dropped, and with it its pipe, even while this handle lives
        on (a handle can outlive its job in reference cycles, such as one through a failed
        job's error and its traceback, until the garbage collector runs)."""
        if self._proc is not None:
            code = self._proc.exitcode
            if code is not None:
                self._exitcode, self._proc = code, None
        return self._exitcode

    def close(self) -> None:
        """Kill the worker if still running and release resources."""
        if not self.done:
            self.kill("closed by the node")
        self.join(5)

    def __enter__(self) -> WorkerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _overdue(self) -> None:
        if not self.done:
            self.kill(f"did not finish within job_timeout ({self.job.job_timeout:g} s)")

    def _pump(self) -> None:
        """Reader thread: route worker messages until it reports or exits."""
        try:
            while True:
                msg = self._conn.recv()
                if msg[0] == "out":
                    self._frame(msg[1], msg[2])
                elif msg[0] == "done":
                    self._finish(result=msg[1])
                    return
                elif msg[0] == "failed":
                    self._finish(error=failure_error(self.job, *msg[1:]))
                    return
        except (EOFError, OSError):
            code = self.join(2)
            why = self._why_killed or f"exited unexpectedly (exit code {code})"
            self._finish(error=SecureCalcError(f"MPC worker for job {self.job.job_id!r}: {why}"))

    def _frame(self, peer: int, data: bytes) -> None:
        self.frames_sent += 1
        self.bytes_sent += len(data)
        if self._on_frame is None:
            self._queue.put((peer, data))
            return
        try:
            self._on_frame(peer, data)
        except Exception:  # noqa: BLE001 - a node bug must not kill the pump
            log.exception("on_frame callback failed")

    def _finish(self, result: JobResult | None = None,
                error: SecureCalcError | None = None) -> None:
        with self._lock:
            self._result, self._error = result, error
            self.finished_at = time.monotonic()
            self._finished.set()
            self._conn.close()
        self._timer.cancel()
        self._queue.put(None)
        on_done, self._on_done, self._on_frame = self._on_done, None, None
        if on_done is not None:
            try:
                on_done(self)
            except Exception:  # noqa: BLE001
                log.exception("on_done callback failed")
        if self.join(5) is None:  # reported but stuck on the way out
            self.kill("did not exit after reporting")
        # multiprocessing keeps every process it started until its next start (or this call)
        # finds it ended: after a burst of jobs, their pipes would stay open until then
        multiprocessing.active_children()


def _overdue(handle: weakref.ref[WorkerHandle]) -> None:
    live = handle()
    if live is not None:
        live._overdue()


class SparePool:
    """One worker process started ahead of need, with mpyc and numpy already imported.

    Starting a process with spawn and importing MPyC takes about 0.3 s, most of a small
    study's time; a node that keeps a spare hands a job to it at once and starts the next
    spare in the background. Each process still runs exactly one job (MPyC's runtime is a
    module global). A spare whose node goes away sees its pipe close and exits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: tuple[Any, Any] | None = None
        self._closed = False

    def fill(self) -> None:
        """Start a spare now unless one is waiting (returns at once; the imports run in it)."""
        with self._lock:
            if self._closed or (self._spare is not None and self._spare[0].is_alive()):
                return
            parent, child = _SPAWN.Pipe(duplex=True)
            proc = _SPAWN.Process(target=run_spare, args=(child,), daemon=True,
                                  name="securecalc-mpc-spare")
            proc.start()
            child.close()
            self._spare = (proc, parent)

    def take(self) -> tuple[Any, Any] | None:
        """The waiting spare (process, pipe), if it is alive; a new one is started."""
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None and not spare[0].is_alive():
            spare[1].close()
            spare = None
        threading.Thread(target=self.fill, daemon=True, name="mpc-spare-fill").start()
        return spare

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare[1].close()  # the spare's recv() fails and it exits
            spare[0].join(2)
            if spare[0].exitcode is None:  # still starting up (a loaded machine): kill it
                spare[0].kill()
                spare[0].join()  # reaped, so nothing of it outlives the pool


def start_worker(job: MpcJob, *, on_frame: FrameCallback | None = None,
                 on_done: DoneCallback | None = None, kill_grace: float = 10.0,
                 pool: SparePool | None = None) -> WorkerHandle:
    """Start a worker for ``job`` (from ``pool``'s spare when one is ready). It is killed if
    not finished ``kill_grace`` s after ``job.job_timeout`` (the worker enforces the timeout
    itself; this is the backstop)."""
    job.validate()
    spare = pool.take() if pool is not None else None
    if spare is not None:
        proc, parent = spare
        try:
            parent.send(("job", job))
            return WorkerHandle(job, proc, parent, on_frame, on_done, kill_grace)
        except (OSError, ValueError):  # the spare died just now: start a fresh one
            parent.close()
    parent, child = _SPAWN.Pipe(duplex=True)
    proc = _SPAWN.Process(target=run_worker, args=(child, job), daemon=True,
                          name=f"securecalc-mpc-{job.job_id}-{job.pid}")
    proc.start()
    child.close()
    return WorkerHandle(job, proc, parent, on_frame, on_done, kill_grace)
