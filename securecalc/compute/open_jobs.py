"""Open aggregation jobs on the compute node (no gRPC here).

A job accepts exactly one contribution from each announced site, adds them as they arrive,
and hands out the sum once, after every site has contributed. The sum is then forgotten, so
a coordinator cannot obtain further decryptable material from the same job, and no partial
sum (for example a single site's ciphertext) ever leaves the node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from securecalc.engines.ckks.aggregate import Accumulator
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import ConfigError, PartyError, ProtocolError

MAX_OPEN_JOBS = 64


@dataclass
class _Job:
    sites: tuple[str, ...]
    layout: Layout
    accumulator: Accumulator
    submitted: set[str] = field(default_factory=set)
    opened_at: float = field(default_factory=time.monotonic)


class ComputeJobs:
    """Thread-safe registry of aggregation jobs."""

    def __init__(self, job_ttl_seconds: float = 3600.0):
        self._jobs: dict[str, _Job] = {}
        self._changed = threading.Condition()
        self._ttl = job_ttl_seconds

    def open(self, job_id: str, sites: tuple[str, ...], layout: Layout,
             params_context: bytes) -> None:
        if len(set(sites)) != len(sites) or len(sites) < 2:
            raise ConfigError("a CKKS job needs at least two distinct sites")
        accumulator = Accumulator(params_context, layout)  # refuses contexts holding keys
        with self._changed:
            self._expire()
            if job_id in self._jobs:
                raise ConfigError(f"job {job_id} is already open")
            if len(self._jobs) >= MAX_OPEN_JOBS:
                raise ConfigError("too many open jobs on this compute node")
            self._jobs[job_id] = _Job(sites, layout, accumulator)

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
        job = self._jobs.get(job_id)
        if job is None:
            raise ConfigError(f"unknown job {job_id}")
        return job

    def _expire(self) -> None:
        now = time.monotonic()
        for job_id in [j for j, job in self._jobs.items() if now - job.opened_at > self._ttl]:
            del self._jobs[job_id]
