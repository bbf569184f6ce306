"""A hospital party node as plain code: what it does when a coordinator or a peer calls.

The transport authenticates each call and hands over a :class:`Caller`; this module checks
the caller may make it, admits the job (:mod:`securecalc.node.intake`), computes and audits.
It reaches the other parties only through :mod:`securecalc.transport.interface`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from securecalc.audit.events import audited, bounded_note, digest, signed_head, store_heads
from securecalc.audit.log import AuditLog
from securecalc.core.canonical import CanonicalJob, RunParameters, canonical_job
from securecalc.core.config import NodeConfig
from securecalc.core.defaults import PEER_TIMEOUT_SECONDS
from securecalc.core.job import Job
from securecalc.core.limits import ANALYSES, NAME_CHARS
from securecalc.core.local import local_contributions
from securecalc.engines.ckks.layout import Layout
from securecalc.engines.mpc.adapter import site_steps
from securecalc.engines.mpc.launcher import SparePool
from securecalc.engines.mpc.task import MpcJob
from securecalc.errors import ConfigError, ProtocolError, SecureCalcError
from securecalc.node.agreement import Agreements, agree
from securecalc.node.ckks_contribution import contribute
from securecalc.node.datastore import DataStore
from securecalc.node.intake import Intake
from securecalc.node.mpc_session import MpcSession, SessionRegistry
from securecalc.roles import Role
from securecalc.transport.interface import (
    MAX_JOB_SECONDS,
    CallContext,
    Caller,
    CkksReply,
    CkksRequest,
    ComputeSubmitter,
    HeadsRequest,
    Inbound,
    MpcReply,
    MpcRequest,
    NotYet,
    PeerLinks,
    StepOutcome,
    remaining,
)
from securecalc.transport.tls import TlsFiles


class PartyNode:
    """One hospital's node: runs the MPC and CKKS jobs coordinators send, relays MPC frames
    between its jobs and their peers, and keeps the audit heads of finished studies."""

    def __init__(self, config: NodeConfig, store: DataStore, audit: AuditLog, *,
                 links: PeerLinks, submitter: ComputeSubmitter):
        self.config = config
        self.store = store
        self.audit = audit
        self.links = links
        self.submitter = submitter
        self.tls = (TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)
                    if config.tls else None)
        self.intake = Intake(config, store, audit)
        self.sessions = SessionRegistry()
        self.agreements = Agreements()
        # after its first MPC job, a node keeps the next job's worker process ready (a node
        # that only serves CKKS never starts one)
        self.spares = SparePool()

    def coordinator_of(self, caller: Caller) -> str:
        """The caller's name if it is one of this node's coordinators (CallerRefused else):
        checked before a coordinator's stream is read."""
        return caller.require(self.config.coordinators, Role.COORDINATOR)

    def receive_job(self, caller: Caller, engine: str, job_id: str,
                    decode: Callable[[], Job]) -> Job:
        """Check the caller is one of this node's coordinators, then ``decode`` the job off
        the wire (limits first); a job refused there is audited in a short record."""
        coordinator = caller.require(self.config.coordinators, Role.COORDINATOR)
        try:
            return decode()
        except ConfigError as exc:
            self.intake.malformed(job_id, engine, coordinator, str(exc))
            raise

    def run_mpc(self, caller: Caller, request: MpcRequest, context: CallContext) -> MpcReply:
        coordinator = caller.require(self.config.coordinators, Role.COORDINATOR)
        job = request.job
        canonical = canonical_job(job, "mpc")
        timeout = remaining(context)
        peer_timeout = _peer_timeout(request.peer_timeout_seconds)
        with self.agreements.arriving(job.job_id):
            self.intake.admit(job, canonical, "mpc", coordinator)
            release = self._agree(job, canonical, peer_timeout, context)
        try:
            return self._compute_mpc(job, canonical, peer_timeout, timeout, context)
        finally:
            release()

    def _agree(self, job: Job, canonical: CanonicalJob, peer_timeout: float,
               context: CallContext) -> Callable[[], None]:
        """The agreement round (:mod:`securecalc.node.agreement`), audited; the release of
        the job's hold."""
        try:
            return agree(self.agreements, self.links, me=self.config.name,
                         parties=job.parties, job_id=job.job_id, digest=canonical.digest,
                         peer_timeout=peer_timeout, deadline=remaining(context),
                         on_cancel=context.on_end)
        except SecureCalcError as exc:
            self.audit.append("agreement_failed", job=job.job_id, digest=canonical.digest,
                              reason=str(exc))
            raise

    def confirm(self, caller: Caller, job_id: str, digest: str) -> bool | None:
        """Another hospital of this node's roster holds ``job_id`` with ``digest``: whether
        this node holds the same job (None while it admits the job, NotYet while it has not
        received it)."""
        others = [h for h in self.config.hospitals if h != self.config.name]
        peer = caller.require(others, Role.HOSPITAL)  # before anything is read or held
        NAME_CHARS.check(len(job_id), "job_id")
        if len(digest) != 64:
            raise ProtocolError("malformed confirmation")
        return self.agreements.receive(peer, job_id, digest)

    def _compute_mpc(self, job: Job, canonical: CanonicalJob, peer_timeout: float,
                     timeout: float, context: CallContext) -> MpcReply:
        session = MpcSession(job, self.config.name, self.links, timeout, pool=self.spares)
        self.sessions.add(session)  # before anything slow: peers may already be sending
        if not context.on_end(lambda: session.abort("the coordinator cancelled the job")):
            session.abort("the coordinator cancelled the job")  # it already had
        try:
            with audited(self.audit, job.job_id, digest=canonical.digest) as end:
                started = time.perf_counter()
                with self.store.data_for(job) as data:
                    parts = local_contributions(job, data, "mpc")
                steps = site_steps(parts, job.release_gates([p.plan for p in parts]),
                                  job.min_cohort)
                local_seconds = time.perf_counter() - started
                result = session.run(MpcJob(
                    job_id=job.job_id, pid=session.pid, party_names=job.party_names(),
                    steps=steps, peer_timeout=peer_timeout, job_timeout=timeout,
                    setup_timeout=max(10.0, 2 * peer_timeout), job_digest=canonical.digest))
                end.update(bytes_sent=result.bytes_sent, rounds=result.rounds,
                           results=digest([list(s.totals) for s in result.steps]))
        finally:
            self.sessions.remove(job.job_id)
        return MpcReply(
            checkpoint_json=signed_head(self.audit),
            steps=tuple(StepOutcome(analysis_id=s.name, totals=tuple(int(t) for t in s.totals),
                                    seconds=s.seconds, bytes_sent=s.bytes_sent,
                                    rounds=s.rounds) for s in result.steps),
            local_seconds=local_seconds, setup_seconds=result.setup_seconds,
            bytes_sent=result.bytes_sent, rounds=result.rounds)

    def accept_stream(self, caller: Caller, job_id: str) -> Inbound:
        """An MPC stream from another hospital of this node's roster for a running job.
        NotYet while the job has not reached this node (the sender tries again)."""
        others = [h for h in self.config.hospitals if h != self.config.name]
        caller.require(others, Role.HOSPITAL)  # before anything is read or held
        if not job_id:
            raise ProtocolError("stream without job id")
        session = self.sessions.get(job_id)
        if session is None:
            if self.sessions.ended(job_id):
                raise ProtocolError("unknown job")
            raise NotYet()  # nothing waits here: the sender tries again shortly
        peer = caller.require(session.peer_names(), Role.HOSPITAL)
        return session.inbound(peer)

    def run_ckks(self, caller: Caller, request: CkksRequest,
                 context: CallContext) -> CkksReply:
        coordinator = caller.require(self.config.coordinators, Role.COORDINATOR)
        job = request.job
        compute = request.compute
        if not isinstance(request.states, dict):
            raise ProtocolError("malformed iterative states")
        params = request.params
        canonical = canonical_job(job, "ckks", compute=compute, run=RunParameters(
            ckks_params={"poly_modulus_degree": params.poly_modulus_degree,
                         "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
                         "scale_bits": params.scale_bits},
            n_values=request.n_values,
            public_context_sha256=hashlib.sha256(request.public_context).hexdigest(),
            states=request.states))
        peer_timeout = _peer_timeout(request.peer_timeout_seconds)
        layout = Layout(n_values=request.n_values, params=request.params)
        with self.agreements.arriving(job.job_id):
            self.intake.admit(job, canonical, "ckks", coordinator, compute.name)
            release = self._agree(job, canonical, peer_timeout, context)
        try:
            with audited(self.audit, job.job_id, compute=compute.name,
                         digest=canonical.digest) as end:
                outcome = contribute(job, self.store, request.states, me=self.config.name,
                                     public_context=request.public_context, layout=layout,
                                     compute=compute, submitter=self.submitter,
                                     key_pem=self.tls.key.read_bytes() if self.tls else None,
                                     timeout=remaining(context), on_cancel=context.on_end)
                end.update(bytes_sent=outcome.bytes_sent, ciphertexts=outcome.ciphertexts)
        finally:
            release()
        return CkksReply(checkpoint_json=signed_head(self.audit),
                         bytes_sent=outcome.bytes_sent, ciphertexts=outcome.ciphertexts,
                         local_seconds=outcome.local_seconds,
                         encrypt_seconds=outcome.encrypt_seconds)

    def store_heads(self, caller: Caller, request: HeadsRequest) -> int:
        """Keep the other parties' verified heads and record what the study released."""
        coordinator = caller.require(self.config.coordinators, Role.COORDINATOR)
        ANALYSES.check(len(request.outcomes), "outcomes")  # before anything is logged
        for outcome in request.outcomes:
            for text in (outcome.analysis_id, outcome.status, outcome.digest):
                NAME_CHARS.check(len(text), "outcomes")
        ca_pem = self.tls.ca.read_bytes() if self.tls else None
        # heads signed by this node's parties or by the calling coordinator, under its name
        signers = (*self.config.hospitals, self.config.compute, coordinator)
        stored = store_heads(self.audit, request.job_id, request.checkpoint_json,
                             ca_pem=ca_pem, allowed=None if self.tls is None else signers,
                             pins=self.config.pins)
        if request.outcomes:  # a long note is recorded cut, never refused (bounded_note)
            self.audit.append("release_reported", job=request.job_id, coordinator=coordinator,
                              outcomes=[{"analysis": o.analysis_id, "status": o.status,
                                         "note": bounded_note(o.note), "digest": o.digest}
                                        for o in request.outcomes])
        return stored


def _peer_timeout(requested: float) -> float:
    """The coordinator's peer timeout for a job (0: the default), checked on every engine."""
    seconds = requested or PEER_TIMEOUT_SECONDS
    if not 0 < seconds <= MAX_JOB_SECONDS:  # also NaN
        raise ProtocolError("malformed peer timeout")
    return seconds
