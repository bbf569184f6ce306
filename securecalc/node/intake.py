"""A hospital node's intake of a job: record it, then policy, approval and privacy budget.

Nothing is computed before :meth:`Intake.admit` returned; every decision is in the audit log.
"""

from __future__ import annotations

import logging

from securecalc.audit.log import AuditLog
from securecalc.core.canonical import CanonicalJob
from securecalc.core.config import NodeConfig
from securecalc.core.job import Job
from securecalc.core.policy import describe_request
from securecalc.errors import ConfigError, PolicyError, StorageError
from securecalc.node.approvals import Approvals
from securecalc.node.datastore import DataStore
from securecalc.node.privacy_ledger import Charge, PrivacyLedger

_LOG = logging.getLogger(__name__)

#: characters kept of a refused job's id and of the reason, in its audit record
REFUSAL_CHARS = 500


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

    def malformed(self, job_id: str, engine: str, coordinator: str, reason: str) -> None:
        """Record a job refused before decoding (in a short record: an oversized job never
        reaches the log)."""
        self.audit.append("study_refused", job=job_id[:REFUSAL_CHARS], engine=engine,
                          coordinator=coordinator, reason=reason[:REFUSAL_CHARS])

    def admit(self, job: Job, canonical: CanonicalJob, engine: str, coordinator: str,
              compute: str | None = None) -> None:
        """Record the request, then apply the policy (and approval) before any computation;
        ``canonical`` is the job in canonical form (its digests identify it in the log and
        in approvals); ``compute`` is the compute node a CKKS job sends ciphertexts to.
        PolicyError when refused."""
        self.audit.append("study_received", job=job.job_id, study=job.study, engine=engine,
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
            self.store.admit(job)  # the catalogue covers what the job reads; no row is read
            if policy.approval and not self.approvals.is_approved(request):
                path = self.approvals.record_pending(describe_request(job, canonical))
                _LOG.warning("study %r awaits approval: %s", job.study, path)
                raise PolicyError(f"awaiting approval: an operator of {self.config.name} must "
                                  f"run `securecalc node approve {request}`")
            charge = self._charge(job)
        except PolicyError as exc:
            self.audit.append("policy_decision", job=job.job_id, decision="refused",
                              reason=str(exc))
            raise
        self.audit.append("policy_decision", job=job.job_id, decision="allowed",
                          digest=canonical.digest,
                          approval=request if policy.approval else None)
        if charge is not None:
            self.audit.append("privacy_charge", job=job.job_id, study=job.study,
                              epsilon=float(charge.epsilon),
                              study_spent=float(charge.study_spent),
                              total_spent=float(charge.total_spent))

    def _charge(self, job: Job) -> Charge | None:
        """Charge a differentially private job to the ledger before it computes anything."""
        if not any(a.epsilon is not None for a in job.analyses):
            return None
        policy = self.config.policy
        try:
            return self.ledger.charge(study=job.study, job_id=job.job_id, epsilon=job.epsilon,
                                      study_budget=policy.study_budget,
                                      total_budget=policy.total_budget)
        except StorageError:  # the disk is full or failing: says so, nothing was charged
            raise
        except ConfigError as exc:  # a damaged ledger: fail closed, keep its path local
            _LOG.error("%s", exc)
            raise PolicyError(f"the privacy ledger of {self.config.name} is damaged; no "
                              "differentially private study runs until an operator "
                              "repairs it") from None
