"""An adversary's coordinator: any job to each node, over the real wire or in process.

The threat is a curious study lead holding a valid coordinator certificate. It runs the
coordinator's own code (:func:`securecalc.coordinator.mpc.run_mpc`,
:func:`securecalc.coordinator.ckks.run_ckks`: key generation, the compute node's job, fetch,
decryption, finishing), but through a network that sends each node its own
``study_pb2.JobSpec``: the honest job (``job_to_proto``) passed through a :data:`Tamper`.
What the attacker gets is the :class:`Outcome`: the released results, or the error it read,
and what each node answered.

- :class:`RawCoordinator` ``.over_grpc(pki, ...)``: real gRPC with mutual TLS, the
  coordinator certificate of ``pki`` (``RunMpc``, ``RunCkks`` with chunked public contexts).
- :class:`RawCoordinator` ``.in_memory(network)``: the same flow over
  :class:`~securecalc.transport.memory.MemoryNetwork`; nodes decode the spec exactly as the
  gRPC servicers do (``job_from_proto`` inside ``PartyNode.receive_job``).
- :func:`stand_in_certificate`: a CA-signed certificate for a roster name with a fresh key.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from securecalc.coordinator.clock import StudyClock
from securecalc.core.config import Party, StudyConfig
from securecalc.core.job import Job
from securecalc.core.results import StudyResult
from securecalc.errors import PartyError, SecureCalcError
from securecalc.node.agreement import CANCELLED
from securecalc.pki import PartyFiles, issue_certificate
from securecalc.roles import Role
from securecalc.transport import chunks
from securecalc.transport.codec import ckks_params_to_proto, job_from_proto, job_to_proto
from securecalc.transport.errors import raise_from_rpc_error, relayed
from securecalc.transport.grpc_network import GrpcStudyNetwork
from securecalc.transport.interface import (
    CkksReply,
    CkksRequest,
    MpcReply,
    MpcRequest,
    StudyClockLike,
    StudyNetwork,
)
from securecalc.transport.memory import COORDINATOR, MemoryCall, MemoryNetwork, MemoryStudyNetwork
from securecalc.transport.messages import (
    ckks_reply_from_proto,
    mpc_reply_from_proto,
    states_from_json,
    states_to_json,
)
from securecalc.transport.proto import node_pb2, node_pb2_grpc, study_pb2
from securecalc.transport.tls import TlsFiles

#: what the attacker sends a node: (node name, the honest job's spec) -> the spec it gets
Tamper = Callable[[str, study_pb2.JobSpec], study_pb2.JobSpec]


def honest(_node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
    """Send every node the honest job."""
    return spec


def per_node(tampers: Mapping[str, Tamper]) -> Tamper:
    """A :data:`Tamper` that applies ``tampers[node]`` (the honest job to the others)."""
    return lambda node, spec: tampers.get(node, honest)(node, spec)


def copy_spec(spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
    fresh = study_pb2.JobSpec()
    fresh.CopyFrom(spec)
    return fresh


@dataclass
class Outcome:
    """What the attacker got from one run."""

    result: StudyResult | None
    error: str | None
    error_type: str | None
    #: the id of the honest job (a CKKS round's job is ``<id>.<round>``)
    job_id: str = ""
    #: per node: "ok", "cancelled" or the error text the coordinator read from it
    nodes: dict[str, str] = field(default_factory=dict)

    @property
    def released(self) -> dict[str, tuple[Any, int | None]]:
        """Released (value, n) of every analysis with a value."""
        if self.result is None:
            return {}
        return {aid: (r.value, r.n) for aid, r in self.result.results.items()
                if r.value is not None}

    @property
    def refused(self) -> bool:
        return self.result is None


class _Recorder:
    """Per-node outcomes of the fan-out calls of one run."""

    def __init__(self, tamper: Tamper, only: Sequence[str] | None = None):
        self.tamper = tamper
        self.only = only
        self.nodes: dict[str, str] = {}
        self.lock = threading.Lock()

    def spec_for(self, node: str, job: Job) -> study_pb2.JobSpec:
        return self.tamper(node, job_to_proto(job))

    def chosen(self, parties: Sequence[Party]) -> list[Party]:
        """The parties the job is sent to (all, or ``only``)."""
        return [p for p in parties if self.only is None or p.name in self.only]

    def record(self, node: str, outcome: str) -> None:
        with self.lock:
            if self.nodes.get(node, "cancelled") == "cancelled":
                self.nodes[node] = outcome


class _GrpcAdversaryNetwork(GrpcStudyNetwork):
    """The coordinator's gRPC network, sending each node its own job."""

    def __init__(self, tls: TlsFiles | None, clock: StudyClockLike, recorder: _Recorder):
        super().__init__(tls, clock)
        self.recorder = recorder

    def _watch(self, name: str, address: str, future: grpc.Future) -> grpc.Future:
        def done(f: grpc.Future) -> None:
            if f.cancelled():
                self.recorder.record(name, "cancelled")
                return
            error = f.exception()
            if error is None:
                self.recorder.record(name, "ok")
                return
            try:
                raise_from_rpc_error(error, party=name, address=address, timeout=None)
            except SecureCalcError as exc:
                self.recorder.record(name, str(exc))

        future.add_done_callback(done)
        return future

    def run_mpc(self, parties: Sequence[Party], request: MpcRequest) -> dict[str, MpcReply]:
        parties = self.recorder.chosen(parties)
        channels = self._channels(parties)
        calls = {}
        for party in parties:
            message = node_pb2.MpcJobRequest(
                spec=self.recorder.spec_for(party.name, request.job),
                peer_timeout_seconds=request.peer_timeout_seconds)
            stub = node_pb2_grpc.PartyNodeStub(channels[party.name])
            calls[party.name] = (lambda t, s=stub, m=message, p=party: self._watch(
                p.name, p.address, s.RunMpc.future(m, timeout=t)))
        replies = self._fan_out(parties, calls, watched=channels)
        return {name: mpc_reply_from_proto(r) for name, r in replies.items()}

    def run_ckks(self, parties: Sequence[Party],
                 request: CkksRequest) -> dict[str, CkksReply]:
        compute = request.compute
        parties = self.recorder.chosen(parties)

        def stream(spec: study_pb2.JobSpec) -> Iterator[node_pb2.CkksJobChunk]:
            yield node_pb2.CkksJobChunk(spec=node_pb2.CkksJobSpec(
                spec=spec, compute_address=compute.address, compute_name=compute.name,
                params=ckks_params_to_proto(request.params), n_values=request.n_values,
                states_json=states_to_json(request.states),
                peer_timeout_seconds=request.peer_timeout_seconds))
            for piece in chunks.split(request.public_context):
                yield node_pb2.CkksJobChunk(context_chunk=piece)

        channels = self._channels(parties)
        calls = {}
        for party in parties:
            spec = self.recorder.spec_for(party.name, request.job)
            stub = node_pb2_grpc.PartyNodeStub(channels[party.name])
            calls[party.name] = (lambda t, s=stub, sp=spec, p=party: self._watch(
                p.name, p.address, s.RunCkks.future(stream(sp), timeout=t)))
        watched = {**channels, **self._channels([compute])}
        replies = self._fan_out(parties, calls, watched=watched)
        return {name: ckks_reply_from_proto(r) for name, r in replies.items()}


class _MemoryAdversaryNetwork(MemoryStudyNetwork):
    """The in-memory network, sending each node its own job (decoded as a servicer does)."""

    def __init__(self, network: MemoryNetwork, clock: StudyClockLike, recorder: _Recorder):
        super().__init__(network, clock, COORDINATOR)
        self.recorder = recorder

    def _recorded(self, party: Party, call: Callable[[], Any]) -> Any:
        try:
            reply = call()
        except PartyError as exc:
            self.recorder.record(party.name, str(exc))
            raise
        except Exception as exc:  # as the gRPC client would read it
            self.recorder.record(party.name, str(relayed(exc, party=party.name)))
            raise
        self.recorder.record(party.name, "ok")
        return reply

    def run_mpc(self, parties: Sequence[Party], request: MpcRequest) -> dict[str, MpcReply]:
        parties = self.recorder.chosen(parties)

        def run(party: Party, context: MemoryCall) -> MpcReply:
            spec = self.recorder.spec_for(party.name, request.job)

            def call() -> MpcReply:
                node = self.network.node(party)
                job = node.receive_job(self.caller, "mpc", spec.job_id,
                                       lambda: job_from_proto(spec, "mpc"))
                return node.run_mpc(self.caller, MpcRequest(job, request.peer_timeout_seconds),
                                    context)

            return self._recorded(party, call)  # type: ignore[no-any-return]

        return self._fan_out(parties, run, watched=parties)

    def run_ckks(self, parties: Sequence[Party],
                 request: CkksRequest) -> dict[str, CkksReply]:
        parties = self.recorder.chosen(parties)

        def run(party: Party, context: MemoryCall) -> CkksReply:
            spec = self.recorder.spec_for(party.name, request.job)

            def call() -> CkksReply:
                node = self.network.node(party)
                job = node.receive_job(self.caller, "ckks", spec.job_id,
                                       lambda: job_from_proto(spec, "ckks"))
                return node.run_ckks(self.caller, CkksRequest(
                    job=job, compute=request.compute, params=request.params,
                    n_values=request.n_values, public_context=request.public_context,
                    states=states_from_json(states_to_json(request.states)),
                    peer_timeout_seconds=request.peer_timeout_seconds), context)

            return self._recorded(party, call)  # type: ignore[no-any-return]

        return self._fan_out(parties, run, watched=[*parties, request.compute])


Opener = Callable[[StudyClockLike, _Recorder], StudyNetwork]


class RawCoordinator:
    """A coordinator that sends each node whatever job it likes and keeps what it gets."""

    def __init__(self, opener: Opener):
        self._open = opener

    @classmethod
    def over_grpc(cls, pki: Path, name: str = "coordinator") -> RawCoordinator:
        """Real gRPC with the certificate ``pki/<name>.crt`` (mutual TLS)."""
        tls = TlsFiles.in_directory(pki, name)
        return cls(lambda clock, recorder: _GrpcAdversaryNetwork(tls, clock, recorder))

    @classmethod
    def in_memory(cls, network: MemoryNetwork) -> RawCoordinator:
        """The nodes of ``network`` (a coordinator-role caller named "coordinator")."""
        return cls(lambda clock, recorder: _MemoryAdversaryNetwork(network, clock, recorder))

    def run(self, config: StudyConfig, tamper: Tamper = honest, *,
            job_id: str | None = None, ungated: bool = False,
            only: Sequence[str] | None = None,
            finish_with: study_pb2.JobSpec | None = None) -> Outcome:
        """Run ``config``'s study as its coordinator would, but send each node
        ``tamper(node, honest spec)``; finishing uses the honest job. ``ungated`` (CKKS: the
        key holder decrypts before any gate) finishes with thresholds of 1, so the outcome
        shows every total the coordinator decrypted; the nodes still get the study's.
        ``only``: send the job to these nodes alone (the others are never called).
        ``finish_with``: the job the coordinator plans, lays out and finishes with (a lead
        that sends every node the same other job reads it as that job)."""
        job = Job(study=config.name, job_id=job_id or uuid.uuid4().hex,
                  parties=config.parties, schema=config.schema, analyses=config.analyses,
                  min_cell_count=config.min_cell_count, min_cohort=config.min_cohort)
        if finish_with is not None:
            job = job_from_proto(finish_with, config.engine)

        def send(node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
            spec = copy_spec(spec)
            spec.min_cohort, spec.min_cell_count = config.min_cohort, config.min_cell_count
            return tamper(node, spec)

        if ungated:
            if config.engine != "ckks":
                raise ValueError("only the CKKS key holder sees totals before the gates")
            job = replace(job, min_cohort=1, min_cell_count=1)
        clock = StudyClock(config.timeout_seconds, config.peer_timeout_seconds)
        recorder = _Recorder(send, only)
        try:
            with self._open(clock, recorder) as network:
                if config.engine == "mpc":
                    from securecalc.coordinator.mpc import run_mpc

                    result = run_mpc(config, job, network, clock)
                else:
                    from securecalc.coordinator.ckks import run_ckks

                    result = run_ckks(config, job, network, clock)
        except SecureCalcError as exc:
            return Outcome(None, str(exc), type(exc).__name__, job.job_id,
                           dict(recorder.nodes))
        return Outcome(result, None, None, job.job_id, dict(recorder.nodes))

    def each_node_says(self, config: StudyConfig, tamper: Tamper = honest, *,
                       wait: float = 4.0) -> dict[str, str | None]:
        """What each node answers when it alone is sent its job, normalised (None: it
        accepted, and waited for its peers until ``wait`` s ran out or finished). A refusal
        at the intake is immediate; nothing here depends on which node answers first."""
        quick = with_config(config, timeout_seconds=wait, peer_timeout_seconds=wait)
        said: dict[str, str | None] = {}
        for party in config.parties:
            outcome = self.run(quick, tamper, only=[party.name])
            text = outcome.nodes.get(party.name, outcome.error)
            said[party.name] = None if text in ("ok", "cancelled") or "did not finish" in (
                outcome.error or "") else normalised(text)
        return said


# --- mutations of a job spec -----------------------------------------------------------------

def analysis_table(spec: study_pb2.JobSpec, analysis_id: str) -> dict[str, Any]:
    import json

    for wire in spec.analyses:
        if wire.id == analysis_id:
            return dict(json.loads(wire.table_json))
    raise KeyError(analysis_id)


def set_analysis(spec: study_pb2.JobSpec, analysis_id: str, **changes: Any) -> None:
    """Change keys of one analysis's table in place (a value None removes the key)."""
    import json

    for wire in spec.analyses:
        if wire.id == analysis_id:
            table = json.loads(wire.table_json)
            for key, value in changes.items():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
            wire.table_json = json.dumps(table, sort_keys=True)
            wire.kind = table["kind"]
            return
    raise KeyError(analysis_id)


def set_column(spec: study_pb2.JobSpec, name: str, *, type: str | None = None,
               bounds: tuple[float, float] | None = None,
               levels: Sequence[str] | None = None) -> None:
    """Change one declared column of the spec's schema in place."""
    for column in spec.schema:
        if column.name == name:
            if type is not None:
                column.type = type
            if bounds is not None:
                column.min, column.max = bounds
            if levels is not None:
                del column.levels[:]
                column.levels.extend(levels)
            return
    raise KeyError(name)


def with_where(analysis_id: str, where: str | None) -> Tamper:
    """A tamper that gives one analysis another filter."""
    def tamper(_node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
        set_analysis(spec, analysis_id, where=where)
        return spec

    return tamper


def with_all_where(where: str | None) -> Tamper:
    """A tamper that gives every analysis the filter ``where``."""
    def tamper(_node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
        for wire in spec.analyses:
            set_analysis(spec, wire.id, where=where)
        return spec

    return tamper


# --- stand-in hospitals and the rest ----------------------------------------------------------

def stand_in_certificate(pki: Path, name: str, out: Path) -> TlsFiles:
    """A certificate for roster name ``name`` with a fresh key, signed by ``pki``'s CA (as a
    lead that can have the study CA issue certificates would get); files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki / "ca.crt", out / "ca.crt")
    files: PartyFiles = issue_certificate(pki / "ca.crt", pki / "ca.key", name, out,
                                          role=Role.HOSPITAL, force=True)
    return TlsFiles(ca=out / "ca.crt", cert=files.cert, key=files.key)


_VOLATILE = [
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}:\d+\b"), "ADDR"),
    (re.compile(r"\blocalhost:\d+\b"), "ADDR"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "JOBID"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "DIGEST"),
    (re.compile(r"/[\w./-]+"), "PATH"),
    (re.compile(r"\b\d+(?:\.\d+)? ?s\b"), "SECONDS"),
]


def normalised(text: str | None, parties: Sequence[str] = ()) -> str | None:
    """An error text without what varies from run to run (addresses, ports, job ids, paths,
    durations), and with ``parties`` masked (which party answers first is timing)."""
    if text is None:
        return None
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    for party in parties:
        text = text.replace(party, "PARTY")
    return text


def said(outcome: Outcome) -> set[str | None]:
    """Every refusal text of a run, normalised: the coordinator's error and each node's."""
    return {normalised(outcome.error), *refusals(outcome).values()}


def refusals(outcome: Outcome) -> dict[str, str]:
    """Each node's own error text (normalised), for the nodes that refused or failed; a node
    that stopped because the coordinator cancelled its call (after another node's refusal,
    whichever came first) counts as cancelled."""
    return {node: normalised(text) or "" for node, text in outcome.nodes.items()
            if text not in ("ok", "cancelled") and CANCELLED not in text}


def with_config(config: StudyConfig, **changes: Any) -> StudyConfig:
    """``config`` with some fields changed (a frozen dataclass or pydantic model)."""
    if hasattr(config, "model_copy"):
        return config.model_copy(update=changes)  # type: ignore[no-any-return]
    return replace(config, **changes)


__all__ = [
    "Outcome", "RawCoordinator", "Tamper", "analysis_table", "copy_spec", "honest",
    "normalised", "per_node", "refusals", "said", "set_analysis", "set_column",
    "stand_in_certificate", "with_all_where", "with_config", "with_where",
]
