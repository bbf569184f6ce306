"""Running a study: the entry point of the Python API and of ``securecalc study run``."""

from __future__ import annotations

import uuid
from pathlib import Path

from securecalc.audit.events import describe_error, digest, open_log
from securecalc.coordinator.clock import StudyClock
from securecalc.coordinator.heads import exchange_heads
from securecalc.core.canonical import canonical_job
from securecalc.core.config import StudyConfig, load_study_config
from securecalc.core.job import Job
from securecalc.core.results import StudyResult
from securecalc.errors import PartyError
from securecalc.transport.interface import Connect
from securecalc.transport.tls import TlsFiles, certificate_name


def new_job(config: StudyConfig) -> Job:
    """A job with a fresh unique id for one run of the study."""
    return Job(study=config.name, job_id=uuid.uuid4().hex, parties=config.parties,
               schema=config.schema, analyses=config.analyses,
               min_cell_count=config.min_cell_count, min_cohort=config.min_cohort)


def run_study(config: StudyConfig | str | Path, *, insecure: bool = False,
              connect: Connect | None = None) -> StudyResult:
    """Run every analysis of the study and return what was released, with its cost.

    ``config`` is a parsed :class:`StudyConfig` or the path of a study.toml. ``insecure``
    (development only) connects without TLS; nodes must then run with ``--insecure`` too.
    ``connect`` opens the network of the study (default: gRPC, see
    :func:`securecalc.wiring.grpc_connect`).
    """
    if connect is None:
        from securecalc.wiring import grpc_connect

        connect = grpc_connect
    if not isinstance(config, StudyConfig):
        config = load_study_config(config, insecure=insecure)
    clock = StudyClock(config.timeout_seconds, config.peer_timeout_seconds)
    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    job = new_job(config)
    log = open_log(config.audit_log or Path("audit") / "coordinator.jsonl", signer(tls),
                   key=tls.key if tls else None, cert=tls.cert if tls else None)
    log.append("study_start", job=job.job_id, study=config.name, engine=config.engine,
               study_digest=canonical_job(job, config.engine,
                                          compute=config.compute).study_digest,
               parties=list(job.party_names()),
               analyses=[{"id": a.id, "kind": a.kind, "columns": list(a.columns),
                          "where": a.where} for a in job.analyses])
    try:
        try:
            with connect(tls, clock) as network:
                if config.engine == "mpc":
                    from securecalc.coordinator.mpc import run_mpc

                    result = run_mpc(config, job, network, clock)
                else:
                    from securecalc.coordinator.ckks import run_ckks

                    result = run_ckks(config, job, network, clock)
                clock.enter("audit heads and release reports")
                log.append("study_end", job=job.job_id, seconds=round(result.cost.seconds, 6),
                           bytes_sent=result.cost.bytes_sent,
                           results={rid: digest(r.value) for rid, r in result.results.items()})
                exchange_heads(config, job, tls, log, result, network)
            clock.remaining()
        except PartyError as exc:
            raise (clock.expired(exc.party) if clock.over else in_phase(exc, clock.phase)) from exc
    except BaseException as exc:
        log.append("study_failed", job=job.job_id, **describe_error(exc))
        raise
    return result


def signer(tls: TlsFiles | None) -> str:
    """The name the coordinator signs its audit head under: its certificate's own, which every
    node checks against the certificate of the call that hands the head over."""
    return certificate_name(tls.cert.read_bytes()) if tls else "coordinator"


def in_phase(error: PartyError, phase: str) -> PartyError:
    """``error`` with the phase of the study it happened in."""
    inner = str(error).removeprefix(f"party {error.party!r}: ")
    return PartyError(error.party, f"{inner} (phase: {phase})")
