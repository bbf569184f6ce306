"""In-memory relay: run all parties' workers on this machine and route frames between them.

The transport-free reference for tests and benchmarks. The relay behaves like a set of nodes:
frames go, in order, from each worker to the named peer; when a worker finishes (or fails)
its "stream" closes and the others receive ``("lost", pid, ...)``. A :class:`Fault` kills one
worker mid-job, either silently (a hung node: the others must notice through
``peer_timeout``) or with an immediate ``lost`` notice (a broken stream).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from securecalc.engines.mpc.launcher import SparePool, WorkerHandle, start_worker
from securecalc.engines.mpc.task import JobResult, MpcJob
from securecalc.errors import ConfigError, SecureCalcError


@dataclass(frozen=True)
class Fault:
    """Kill worker ``pid`` when it tries to send its frame number ``after_frames + 1``.

    With ``report_lost`` the other workers are told ``("lost", pid)`` at once; without, the
    relay stays silent about it.
    """

    pid: int
    after_frames: int
    report_lost: bool = False


@dataclass(frozen=True)
class LocalOutcome:
    """One party's outcome: a result or an error, and what its worker sent."""

    pid: int
    result: JobResult | None
    error: SecureCalcError | None
    frames_sent: int
    bytes_sent: int
    seconds: float


class _Relay:
    def __init__(self, jobs: Sequence[MpcJob], fault: Fault | None,
                 pools: Sequence[SparePool | None] = ()):
        m = len(jobs)
        if sorted(j.pid for j in jobs) != list(range(m)) or any(j.m != m for j in jobs):
            raise ConfigError("run_local needs one job per party, pids 0..m-1")
        if len({j.job_id for j in jobs}) != 1:
            raise ConfigError("run_local needs one job id")
        self.jobs = sorted(jobs, key=lambda j: j.pid)
        self.fault = fault
        self.pools = list(pools) or [None] * m
        self.handles: list[WorkerHandle] = []
        self.ready = threading.Event()
        self.silenced: set[int] = set()
        self.fault_count = 0
        self.started = time.monotonic()

    def start(self) -> None:
        try:
            for job in self.jobs:
                self.handles.append(start_worker(job, on_frame=partial(self._route, job.pid),
                                                 on_done=partial(self._done, job.pid),
                                                 pool=self.pools[job.pid]))
        finally:
            self.ready.set()

    def _route(self, src: int, peer: int, data: bytes) -> None:
        self.ready.wait()
        f = self.fault
        if f is not None and src == f.pid:
            self.fault_count += 1
            if self.fault_count > f.after_frames:
                if self.fault_count == f.after_frames + 1:
                    self._inject(f)
                return
        if 0 <= peer < len(self.handles) and peer != src:
            self.handles[peer].deliver(src, data)

    def _inject(self, f: Fault) -> None:
        if not f.report_lost:
            self.silenced.add(f.pid)
        self.handles[f.pid].kill("killed by an injected fault")
        if f.report_lost:
            self._tell_lost(f.pid, "stream broken (injected fault)")

    def _done(self, src: int, handle: WorkerHandle) -> None:
        self.ready.wait()
        if src not in self.silenced:
            how = "finished" if handle.error() is None else "failed"
            self._tell_lost(src, f"stream closed (party {how})")

    def _tell_lost(self, src: int, reason: str) -> None:
        for h in self.handles:
            if h.job.pid != src:
                h.peer_lost(src, reason)


def run_local_outcomes(jobs: Sequence[MpcJob], *, fault: Fault | None = None,
                       timeout: float | None = None,
                       pools: Sequence[SparePool | None] = ()) -> list[LocalOutcome]:
    """Run every party's job in its own worker (from ``pools[pid]`` when given); return each
    party's outcome (by pid)."""
    relay = _Relay(jobs, fault, pools)
    limit = timeout if timeout is not None else max(j.job_timeout for j in jobs) + 30
    try:
        relay.start()
        deadline = relay.started + limit
        errors = [h.error(max(0.0, deadline - time.monotonic())) for h in relay.handles]
        return [
            LocalOutcome(h.job.pid, None if e is not None else h.result(), e, h.frames_sent,
                         h.bytes_sent, (h.finished_at or time.monotonic()) - relay.started)
            for h, e in zip(relay.handles, errors, strict=True)
        ]
    finally:
        for h in relay.handles:
            h.close()


def run_local(jobs: Sequence[MpcJob], *, fault: Fault | None = None,
              timeout: float | None = None) -> list[JobResult]:
    """Run every party's job locally; return the results by pid or raise the first error."""
    outcomes = run_local_outcomes(jobs, fault=fault, timeout=timeout)
    for o in outcomes:
        if o.error is not None:
            raise o.error
    return [o.result for o in outcomes if o.result is not None]
