"""Running a study: the entry point of the Python API and of ``securecalc study run``."""

from __future__ import annotations

import uuid
from pathlib import Path

from securecalc.core.config import StudyConfig, load_study_config
from securecalc.core.job import Job
from securecalc.core.results import StudyResult
from securecalc.transport.tls import TlsFiles


def new_job(config: StudyConfig) -> Job:
    """A job with a fresh unique id for one run of the study."""
    return Job(study=config.name, job_id=uuid.uuid4().hex, parties=config.parties,
               schema=config.schema, analyses=config.analyses,
               min_cell_count=config.min_cell_count)


def run_study(config: StudyConfig | str | Path, *, insecure: bool = False) -> StudyResult:
    """Run every analysis of the study and return what was released, with its cost.

    ``config`` is a parsed :class:`StudyConfig` or the path of a study.toml. ``insecure``
    (development only) connects without TLS; nodes must then run with ``--insecure`` too.
    """
    if not isinstance(config, StudyConfig):
        config = load_study_config(config, insecure=insecure)
    tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key) if config.tls else None
    job = new_job(config)
    if config.engine == "mpc":
        from securecalc.coordinator.mpc import run_mpc

        return run_mpc(config, job, tls)
    from securecalc.coordinator.ckks import run_ckks

    return run_ckks(config, job, tls)
