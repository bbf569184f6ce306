"""gRPC servicer of a hospital party node: decode, call the job functions, encode."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator

import grpc

from securecalc.audit.events import audited, digest, signed_head, store_heads
from securecalc.audit.log import AuditLog
from securecalc.core.config import NodeConfig
from securecalc.core.job import Job
from securecalc.core.limits import ANALYSES, CKKS_CONTEXT, NAME_CHARS, NOTE_CHARS
from securecalc.core.policy import describe_request, request_id
from securecalc.engines.ckks.layout import Layout
from securecalc.engines.mpc.job import MpcJob
from securecalc.engines.mpc.launcher import SparePool
from securecalc.errors import ConfigError, PolicyError, ProtocolError, StorageError
from securecalc.node.approvals import Approvals
from securecalc.node.ckks_job import contribute
from securecalc.node.contribution import contributions, mpc_steps
from securecalc.node.datastore import DataStore
from securecalc.node.mpc_session import (
    ACCEPTED_HEADER,
    JOB_HEADER,
    NOT_YET,
    MpcSession,
    SessionRegistry,
)
from securecalc.node.privacy_ledger import Charge, PrivacyLedger
from securecalc.roles import Role
from securecalc.transport import chunks
from securecalc.transport.codec import ckks_params_from_proto, job_from_proto
from securecalc.transport.errors import rpc_boundary
from securecalc.transport.identity import require_peer
from securecalc.transport.proto import node_pb2, node_pb2_grpc, study_pb2
from securecalc.transport.tls import TlsFiles

_LOG = logging.getLogger(__name__)

MAX_JOB_SECONDS = 3600.0
#: characters kept of a refused job's id and of the reason, in its audit record
REFUSAL_CHARS = 500


class NodeService(node_pb2_grpc.PartyNodeServicer):
    def __init__(self, config: NodeConfig, store: DataStore, audit: AuditLog):
        self.config = config
        self.store = store
        self.audit = audit
        self.insecure = config.tls is None
        self.tls = (TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)
                    if config.tls else None)
        self.sessions = SessionRegistry()
        # after its first MPC job, a node keeps the next job's worker process ready (a node
        # that only serves CKKS never starts one)
        self.spares = SparePool()
        self.approvals = Approvals(config.approvals_dir or
                                   config.data_path.parent / "approvals" / config.name)
        self.ledger = PrivacyLedger(config.privacy_ledger or config.data_path.parent
                                    / "privacy-ledger" / f"{config.name}.jsonl")

    def _decode(self, spec: study_pb2.JobSpec, engine: str, coordinator: str) -> Job:
        """Decode and check a job off the wire (limits first); a refused job is audited in a
        short record, so an oversized one never reaches the log."""
        try:
            return job_from_proto(spec, engine)
        except ConfigError as exc:
            self.audit.append("study_refused", job=spec.job_id[:REFUSAL_CHARS], engine=engine,
                              coordinator=coordinator, reason=str(exc)[:REFUSAL_CHARS])
            raise

    def _received(self, job: Job, engine: str, coordinator: str,
                  compute: str | None = None) -> None:
        """Record the request, then apply the policy (and approval) before any computation;
        ``compute`` is the compute node a CKKS job sends ciphertexts to."""
        self.audit.append("study_received", job=job.job_id, study=job.study, engine=engine,
                          coordinator=coordinator, parties=list(job.party_names()),
                          compute=compute,
                          analyses=[{"id": a.id, "kind": a.kind, "columns": list(a.columns),
                                     "where": a.where} for a in job.analyses])
        policy = self.config.policy
        request = request_id(job, engine, compute)
        try:
            policy.check_parties(job, engine, compute, self.config.roster)
            policy.check(job)
            self.store.admit(job)  # the catalogue covers what the job reads; no row is read
            if policy.approval and not self.approvals.is_approved(request):
                path = self.approvals.record_pending(describe_request(job, engine, compute))
                _LOG.warning("study %r awaits approval: %s", job.study, path)
                raise PolicyError(f"awaiting approval: an operator of {self.config.name} must "
                                  f"run `securecalc node approve {request}`")
            charge = self._charge(job)
        except PolicyError as exc:
            self.audit.append("policy_decision", job=job.job_id, decision="refused",
                              reason=str(exc))
            raise
        self.audit.append("policy_decision", job=job.job_id, decision="allowed",
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
                                      study_budget=policy.dp_budget,
                                      total_budget=policy.dp_total_budget)
        except StorageError:  # the disk is full or failing: says so, nothing was charged
            raise
        except ConfigError as exc:  # a damaged ledger: fail closed, keep its path local
            _LOG.error("%s", exc)
            raise PolicyError(f"the privacy ledger of {self.config.name} is damaged; no "
                              "differentially private study runs until an operator "
                              "repairs it") from None

    @rpc_boundary
    def RunMpc(self, request: node_pb2.MpcJobRequest,
               context: grpc.ServicerContext) -> node_pb2.MpcJobReply:
        coordinator = require_peer(context, self.config.coordinators, role=Role.COORDINATOR,
                                   insecure=self.insecure)
        job = self._decode(request.spec, "mpc", coordinator)
        self._received(job, "mpc", coordinator)
        timeout = _remaining(context)
        session = MpcSession(job, self.config.name, self.tls, timeout, pool=self.spares)
        self.sessions.add(session)  # before anything slow: peers may already be sending
        if not context.add_callback(lambda: session.abort("the coordinator cancelled the job")):
            session.abort("the coordinator cancelled the job")  # it already had
        try:
            with audited(self.audit, job.job_id) as end:
                started = time.perf_counter()
                parts = contributions(job, self.store.table_for(job), "mpc")
                steps = mpc_steps(parts, job.release_gates([p.plan for p in parts]),
                                  job.min_cohort)
                local_seconds = time.perf_counter() - started
                peer_timeout = request.peer_timeout_seconds or 15.0
                result = session.run(MpcJob(
                    job_id=job.job_id, pid=session.pid, party_names=job.party_names(),
                    steps=steps, peer_timeout=peer_timeout, job_timeout=timeout,
                    setup_timeout=max(10.0, 2 * peer_timeout)))
                end.update(bytes_sent=result.bytes_sent, rounds=result.rounds,
                           results=digest([list(s.totals) for s in result.steps]))
        finally:
            self.sessions.remove(job.job_id)
        return node_pb2.MpcJobReply(
            checkpoint_json=signed_head(self.audit),
            steps=[node_pb2.StepOutcome(analysis_id=s.name, totals=[str(t) for t in s.totals],
                                        seconds=s.seconds, bytes_sent=s.bytes_sent,
                                        rounds=s.rounds) for s in result.steps],
            local_seconds=local_seconds, setup_seconds=result.setup_seconds,
            bytes_sent=result.bytes_sent, rounds=result.rounds)

    @rpc_boundary
    def Exchange(self, request_iterator: Iterator[node_pb2.MpcFrame],
                 context: grpc.ServicerContext) -> node_pb2.ExchangeAck:
        self._exchange_caller(context)  # before anything is read or held
        job_id = dict(context.invocation_metadata()).get(JOB_HEADER)
        if not isinstance(job_id, str) or not job_id:
            raise ProtocolError("stream without job id")
        session = self.sessions.get(job_id)
        if session is None:
            if self.sessions.ended(job_id):
                raise ProtocolError("unknown job")
            # nothing waits here: a party of the job tries again shortly (see MpcSession)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, NOT_YET)
        peer = require_peer(context, session.peer_names(), role=Role.HOSPITAL,
                            insecure=self.insecure)
        context.send_initial_metadata(((ACCEPTED_HEADER, "1"),))
        peer_pid = session.peer_pid(peer)
        frames = 0
        try:
            for frame in request_iterator:
                if frame.job_id != job_id:
                    raise ProtocolError("frame of another job")
                session.deliver(peer_pid, frame.data)
                frames += 1
        except grpc.RpcError:
            session.peer_lost(peer_pid, f"the stream from {peer} broke")
            raise
        return node_pb2.ExchangeAck(frames=frames)

    def _exchange_caller(self, context: grpc.ServicerContext) -> str:
        """Refuse at once a caller that is not another hospital of this node's roster, by its
        certificate's name and role (only they send MPC messages)."""
        others = [h for h in self.config.hospitals if h != self.config.name]
        return require_peer(context, others, role=Role.HOSPITAL, insecure=self.insecure)

    @rpc_boundary
    def RunCkks(self, request_iterator: Iterator[node_pb2.CkksJobChunk],
                context: grpc.ServicerContext) -> node_pb2.CkksJobReply:
        coordinator = require_peer(context, self.config.coordinators, role=Role.COORDINATOR,
                                   insecure=self.insecure)
        first = next(request_iterator, None)
        if first is None or not first.HasField("spec"):
            raise ProtocolError("CKKS job without its specification")
        spec = first.spec
        job = self._decode(spec.spec, "ckks", coordinator)
        self._received(job, "ckks", coordinator, spec.compute_name)
        public_context = chunks.join(
            (c.context_chunk for c in itertools.chain([first], request_iterator)),
            max_bytes=CKKS_CONTEXT.value)
        layout = Layout(n_values=spec.n_values, params=ckks_params_from_proto(spec.params))
        try:
            states = json.loads(spec.states_json) if spec.states_json else {}
        except (ValueError, RecursionError):  # json recurses once per nesting level
            raise ProtocolError("malformed iterative states") from None
        if not isinstance(states, dict):
            raise ProtocolError("malformed iterative states")
        with audited(self.audit, job.job_id, compute=spec.compute_name) as end:
            outcome = contribute(job, self.store, states, me=self.config.name,
                                 public_context=public_context,
                                 layout=layout, compute_name=spec.compute_name,
                                 compute_address=spec.compute_address, tls=self.tls,
                                 timeout=_remaining(context), on_cancel=context.add_callback)
            end.update(bytes_sent=outcome.bytes_sent, ciphertexts=outcome.ciphertexts)
        return node_pb2.CkksJobReply(checkpoint_json=signed_head(self.audit),
                                     bytes_sent=outcome.bytes_sent,
                                     ciphertexts=outcome.ciphertexts,
                                     local_seconds=outcome.local_seconds,
                                     encrypt_seconds=outcome.encrypt_seconds)


    @rpc_boundary
    def StoreHeads(self, request: node_pb2.HeadsRequest,
                   context: grpc.ServicerContext) -> node_pb2.HeadsReply:
        coordinator = require_peer(context, self.config.coordinators, role=Role.COORDINATOR,
                                   insecure=self.insecure)
        ANALYSES.check(len(request.outcomes), "outcomes")  # before anything is logged
        for outcome in request.outcomes:
            for text, limit in ((outcome.analysis_id, NAME_CHARS), (outcome.status, NAME_CHARS),
                                (outcome.digest, NAME_CHARS), (outcome.note, NOTE_CHARS)):
                limit.check(len(text), "outcomes")
        ca_pem = self.tls.ca.read_bytes() if self.tls else None
        stored = store_heads(self.audit, request.job_id, request.checkpoint_json,
                             ca_pem=ca_pem)
        if request.outcomes:
            self.audit.append("release_reported", job=request.job_id, coordinator=coordinator,
                              outcomes=[{"analysis": o.analysis_id, "status": o.status,
                                         "note": o.note, "digest": o.digest}
                                        for o in request.outcomes])
        return node_pb2.HeadsReply(stored=stored)


def _remaining(context: grpc.ServicerContext) -> float:
    """Seconds left before the caller's deadline (bounded)."""
    remaining = context.time_remaining()
    return MAX_JOB_SECONDS if remaining is None else max(1.0, min(remaining, MAX_JOB_SECONDS))
