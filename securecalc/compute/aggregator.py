"""The compute node as plain code: it opens jobs, adds the sites' ciphertexts and hands the
sum to the coordinator, auditing each step; callers are checked by name and role."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from securecalc.audit.events import digest, signed_head
from securecalc.audit.log import AuditLog
from securecalc.compute.open_jobs import ComputeJobs
from securecalc.core.limits import PARTIES
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import CryptoError
from securecalc.roles import Role
from securecalc.signing import verify_submission
from securecalc.transport.interface import CallContext, Caller, OpenJob, Submission

MAX_FETCH_WAIT_SECONDS = 300.0


class Aggregator:
    """The untrusted compute node's calls; ``insecure``: no signatures are checked
    (development mode, callers are not authenticated); ``pins``: the key pin of every
    hospital that may submit (and of coordinators, optionally), checked by the transport's
    :class:`Caller`."""

    def __init__(self, jobs: ComputeJobs, audit: AuditLog, *, coordinators: tuple[str, ...],
                 insecure: bool, pins: Mapping[str, str] | None = None):
        self.jobs = jobs
        self.audit = audit
        self.coordinators = coordinators
        self.insecure = insecure
        self.pins: Mapping[str, str] = dict(pins or {})

    def open_job(self, caller: Caller, request: OpenJob) -> None:
        coordinator = caller.require(self.coordinators, Role.COORDINATOR)
        PARTIES.check(len(request.sites), "sites")  # the layout checks its ciphertext count
        self.jobs.open(request.job_id, request.sites, request.layout, request.params_context,
                       coordinator=coordinator, lifetime_seconds=request.lifetime_seconds)
        self.audit.append("job_open", job=request.job_id, coordinator=coordinator,
                          sites=list(request.sites), n_values=request.layout.n_values,
                          ciphertexts=request.layout.n_ciphertexts)

    def accept(self, caller: Caller, job_id: str) -> Layout:
        """Check ``caller`` is a site of the open job ``job_id``, before its submission is
        read; the layout its ciphertexts must fit."""
        caller.require(self.jobs.expected_sites(job_id), Role.HOSPITAL)
        return self.jobs.layout(job_id)

    def submit(self, caller: Caller, submission: Submission) -> int:
        """Add one site's ciphertexts, signed by that site (bound to this job, this site and
        each ciphertext's position); how many were received."""
        job_id = submission.job_id
        site = caller.require(self.jobs.expected_sites(job_id), Role.HOSPITAL)
        ciphertexts = list(submission.ciphertexts)
        signature = submission.signature
        if not self.insecure:
            if caller.certificate is None or not signature:
                raise CryptoError(f"the submission of {site} is not signed")
            verify_submission(caller.certificate, signature, job_id, site, ciphertexts)
        self.jobs.submit(job_id, site, ciphertexts)
        self.audit.append("contribution", job=job_id, site=site,
                          bytes=sum(len(c) for c in ciphertexts),
                          signature=hashlib.sha256(signature).hexdigest() if signature else None)
        return len(ciphertexts)

    def fetch_sum(self, caller: Caller, job_id: str, wait_seconds: float,
                  context: CallContext) -> list[bytes]:
        """The sum over every site once all contributed (then the job is forgotten)."""
        caller.require(self.coordinators, Role.COORDINATOR)
        wait = min(max(wait_seconds, 0.0), MAX_FETCH_WAIT_SECONDS)
        context.on_end(self.jobs.wake)  # a coordinator that goes away frees this thread
        total = self.jobs.take_sum(job_id, wait, gone=lambda: not context.is_active())
        self.audit.append("sum_released", job=job_id, bytes=sum(len(c) for c in total),
                          digest=digest([hashlib.sha256(c).hexdigest() for c in total]))
        return total

    def close_job(self, caller: Caller, job_id: str) -> None:
        coordinator = caller.require(self.coordinators, Role.COORDINATOR)
        if self.jobs.close(job_id):
            self.audit.append("job_closed", job=job_id, coordinator=coordinator)

    def checkpoint(self, caller: Caller) -> str:
        caller.require(self.coordinators, Role.COORDINATOR)
        return signed_head(self.audit)
