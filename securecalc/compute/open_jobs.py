"""Open aggregation jobs on the compute node (no gRPC here).

A job accepts exactly one contribution from each announced site, adds them as they arrive,
and hands out the sum once, after every site has contributed. The sum is then forgotten, so
a coordinator cannot obtain further decryptable material from the same job, and no partial
sum (for example a single site's ciphertext) ever leaves the node.

Nobody can fill the table for others: each coordinator may hold at most
:data:`~securecalc.core.limits.OPEN_JOBS_PER_COORDINATOR` open jobs, every job closes when
its study's time is up (the lifetime its coordinator states, capped at
:data:`MAX_JOB_SECONDS`), and a full table refuses the newest job, naming the limit; a live
job of another coordinator is never evicted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from securecalc.core.limits import OPEN_JOBS_PER_COORDINATOR
from securecalc.engines.ckks.aggregate import Accumulator
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import ConfigError, PartyError, ProtocolError

MAX_OPEN_JOBS = 64
#: the longest a job stays open, whatever its coordinator states
MAX_JOB_SECONDS = 3600.0
#: a job's lifetime when its coordinator states none
DEFAULT_JOB_SECONDS = 600.0


@dataclass
class _Job:
    sites: tuple[str, ...]
    layout: Layout
    accumulator: Accumulator
    coordinator: str
    expires_at: float
    submitted: set[str] = field(default_factory=set)


class ComputeJobs:
    """Thread-safe registry of aggregation jobs."""

    def __init__(self, max_job_seconds: float = MAX_JOB_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._jobs: dict[str, _Job] = {}
        self._changed = threading.Condition()
        self._max = max_job_seconds
        self._clock = clock

    def open(self, job_id: str, sites: tuple[str, ...], layout: Layout,
             params_context: bytes, *, coordinator: str = "",
             lifetime_seconds: float = 0.0) -> None:
        """Open ``job_id`` for ``coordinator``, closed after ``lifetime_seconds`` (the study's
        remaining time; 0: :data:`DEFAULT_JOB_SECONDS`; capped at the maximum)."""
        if len(set(sites)) != len(sites) or len(sites) < 2:
            raise ConfigError("a CKKS job needs at least two distinct sites")
        if not lifetime_seconds > 0:  # also NaN
            lifetime_seconds = DEFAULT_JOB_SECONDS
        lifetime = min(lifetime_seconds, self._max)
        accumulator = Accumulator(params_context, layout)  # refuses contexts holding keys
        with self._changed:
            self._expire()
            if job_id in self._jobs:
                raise ConfigError(f"job {job_id} is already open")
            mine = sum(1 for job in self._jobs.values() if job.coordinator == coordinator)
            if mine >= OPEN_JOBS_PER_COORDINATOR.value:
                raise ConfigError(
                    f"{coordinator or 'this coordinator'} already has {mine} open jobs on this "
                    f"compute node; the limit is {OPEN_JOBS_PER_COORDINATOR.value} per "
                    "coordinator (open jobs per coordinator, limits table in the README); "
                    "each closes when its study ends or its time is up")
            if len(self._jobs) >= MAX_OPEN_JOBS:
                raise ConfigError(
                    f"the compute node has {MAX_OPEN_JOBS} open jobs, its limit; each closes "
                    "when its study ends or its time is up")
            self._jobs[job_id] = _Job(sites, layout, accumulator, coordinator,
                                      self._clock() + lifetime)

    def expected_sites(self, job_id: str) -> tuple[str, ...]:
        with self._changed:
            return self._get(job_id).sites

    def layout(self, job_id: str) -> Layout:
        with self._changed:
            return self._get(job_id).layout

    def submit(self, job_id: str, site: str, ciphertexts: list[bytes]) -> None:
        """Add one site's ciphertexts (validated by the accumulator before deserializing)."""
        with self._changed:
            job = self._get(job_id)
            if site not in job.sites:
                raise PartyError(site, f"is not a site of job {job_id}")
            if site in job.submitted:
                raise PartyError(site, f"already contributed to job {job_id}")
            if len(ciphertexts) != job.layout.n_ciphertexts:
                raise ProtocolError("wrong number of ciphertexts")
            job.accumulator.add(ciphertexts)
            job.submitted.add(site)
            self._changed.notify_all()

    def take_sum(self, job_id: str, wait_seconds: float,
                 gone: Callable[[], bool] = lambda: False) -> list[bytes]:
        """Wait until every site contributed, then return the sum and forget the job.

        ``gone()`` tells that the caller went away (call :meth:`wake` when it does): the job
        is then forgotten at once, as nobody can fetch its sum any more, and the waiting
        thread is free again instead of waiting out ``wait_seconds``.
        """
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            while True:
                job = self._get(job_id)
                missing = [s for s in job.sites if s not in job.submitted]
                if not missing:
                    del self._jobs[job_id]
                    return job.accumulator.result()
                if gone():
                    del self._jobs[job_id]
                    raise ProtocolError(f"the fetch of job {job_id} was cancelled; the job "
                                        "is closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PartyError(missing[0], f"did not contribute to job {job_id} within "
                                     f"{wait_seconds:g} s (missing: {', '.join(missing)})")
                self._changed.wait(remaining)

    def wake(self) -> None:
        """Wake every waiting :meth:`take_sum`, so that it checks whether its caller left."""
        with self._changed:
            self._changed.notify_all()

    def close(self, job_id: str) -> bool:
        """Forget the job (its study failed); whether it was open."""
        with self._changed:
            return self._jobs.pop(job_id, None) is not None

    def _get(self, job_id: str) -> _Job:
        self._expire()
        job = self._jobs.get(job_id)
        if job is None:
            raise ConfigError(f"unknown job {job_id}")
        return job

    def _expire(self) -> None:
        """Forget the jobs whose time is up (their studies are over)."""
        now = self._clock()
        for job_id in [j for j, job in self._jobs.items() if now >= job.expires_at]:
            del self._jobs[job_id]
