"""A hospital node's intake of a job: record it, then policy, approval and privacy budget.

Nothing is computed before :meth:`Intake.admit` returned; every decision is in the audit log:
an admitted job in full, with its privacy charge written before the ledger's line; a refused
one in a short record within its coordinator's quota (:mod:`securecalc.node.refusals`).
"""

from __future__ import annotations

import logging
from typing import Any

from securecalc.audit.log import AuditLog
from securecalc.core.canonical import CanonicalJob
from securecalc.core.config import NodeConfig
from securecalc.core.job import Job
from securecalc.core.policy import describe_request
from securecalc.errors import ConfigError, PolicyError, StorageError
from securecalc.node.approvals import Approvals
from securecalc.node.datastore import DataStore
from securecalc.node.privacy_ledger import Charge, PrivacyLedger
from securecalc.node.refusals import REFUSAL_CHARS, RefusalLog, short_received

_LOG = logging.getLogger(__name__)

Events = list[tuple[str, dict[str, Any]]]


class Intake:
    """Admits or refuses the jobs coordinators send to one node."""

    def __init__(self, config: NodeConfig, store: DataStore, audit: AuditLog):
        self.config = config
        self.store = store
        self.audit = audit
        self.approvals = Approvals(config.approvals_dir or
                                   config.default_folder / "approvals" / config.name)
        self.ledger = PrivacyLedger(config.privacy_ledger or config.default_folder
                                    / "privacy-ledger" / f"{config.name}.jsonl")
        self.refusals = RefusalLog(audit)

    def malformed(self, job_id: str, engine: str, coordinator: str, reason: str) -> None:
        """Record a job refused before decoding (in a short record: an oversized job never
        reaches the log)."""
        self.refusals.record(coordinator, [("study_refused", {
            "job": job_id[:REFUSAL_CHARS], "engine": engine, "coordinator": coordinator,
            "reason": reason[:REFUSAL_CHARS]})])

    def admit(self, job: Job, canonical: CanonicalJob, engine: str, coordinator: str,
              compute: str | None = None) -> None:
        """Record the request, then apply the policy (and approval) before any computation;
        ``canonical`` is the job in canonical form (its digests identify it in the log and
        in approvals); ``compute`` is the compute node a CKKS job sends ciphertexts to.
        PolicyError when refused."""
        received = dict(job=job.job_id, study=job.study, engine=engine,
                        digest=canonical.digest, study_digest=canonical.study_digest,
                        coordinator=coordinator, parties=list(job.party_names()),
                        compute=compute,
                        analyses=[{"id": a.id, "kind": a.kind, "columns": list(a.columns),
                                   "where": a.where} for a in job.analyses])
        policy = self.config.policy
        request = canonical.approval_id
        try:
            policy.check_parties(job, engine, compute, self.config.roster)
            policy.check(job)
            self.store.admit(job)  # the job restates the catalogue it reads; no row is read
            if policy.approval and not self.approvals.is_approved(request):
                path = self.approvals.record_pending(describe_request(job, canonical))
                _LOG.warning("study %r awaits approval: %s", job.study, path)
                raise PolicyError(f"awaiting approval: an operator of {self.config.name} must "
                                  f"run `securecalc node approve {request}`")
            self._charge(job, [("study_received", received), ("policy_decision", dict(
                job=job.job_id, decision="allowed", digest=canonical.digest,
                approval=request if policy.approval else None))])
        except PolicyError as exc:
            self.refusals.record(coordinator, [
                ("study_received", short_received(received)),
                ("policy_decision", dict(job=job.job_id, decision="refused",
                                         reason=str(exc)[:REFUSAL_CHARS]))])
            raise

    def _charge(self, job: Job, admitted: Events) -> None:
        """Record the admitted job (``admitted``) and charge a differentially private one to
        the ledger, audit record first, before it computes anything."""
        if not any(a.epsilon is not None for a in job.analyses):
            self.audit.append_all(admitted)
            return
        policy = self.config.policy

        def record(charge: Charge) -> None:
            self.audit.append_all([*admitted, ("privacy_charge", dict(
                job=job.job_id, study=job.study, epsilon=float(charge.epsilon),
                study_spent=float(charge.study_spent),
                total_spent=float(charge.total_spent)))])

        try:
            self.ledger.charge(study=job.study, job_id=job.job_id, epsilon=job.epsilon,
                               study_budget=policy.study_budget,
                               total_budget=policy.total_budget, record=record)
        except StorageError:  # the disk is full or failing: says so, nothing was charged
            raise
        except ConfigError as exc:  # a damaged ledger: fail closed, keep its path local
            _LOG.error("%s", exc)
            raise PolicyError(f"the privacy ledger of {self.config.name} is damaged; no "
                              "differentially private study runs until an operator "
                              "repairs it") from None
