"""Jobs run end to end through the engines' adapters, in one process.

MPC: every site's steps from :func:`~securecalc.engines.mpc.adapter.site_steps`, run by real
MPyC workers (:func:`~securecalc.engines.mpc.local.run_local`), the released totals decoded
by the adapter. CKKS: real TenSEAL keys, every site's packed vector encrypted, added by the
compute node's :class:`~securecalc.engines.ckks.aggregate.Accumulator`, decrypted and rounded
as the coordinator does, the rounds driven by :func:`~securecalc.engines.ckks.adapter.
run_rounds`. Both end in :func:`~securecalc.core.release.result_of`, as the coordinator does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from securecalc.coordinator.ckks import release_rounding
from securecalc.core.analyses import Analysis
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.local import local_contributions
from securecalc.core.release import result_of
from securecalc.core.schema import Schema
from securecalc.core.table import Table
from securecalc.engines.ckks import adapter as ckks
from securecalc.engines.ckks.aggregate import Accumulator
from securecalc.engines.ckks.context import KeyHolder
from securecalc.engines.ckks.encrypt import encrypt_packed
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.engines.mpc import adapter as mpc
from securecalc.engines.mpc.local import run_local
from securecalc.engines.mpc.task import MpcJob

Result = tuple[Any, int | None, str | None]


def new_job(schema: Schema, analyses: Sequence[Analysis], *, sites: int = 3,
            min_cohort: int = 10, min_cell_count: int = 5) -> Job:
    return Job(study="adapters", job_id="adapters-job",
               parties=tuple(Party(f"site-{i}", f"127.0.0.1:{7000 + i}") for i in range(sites)),
               schema=schema, analyses=tuple(analyses), min_cell_count=min_cell_count,
               min_cohort=min_cohort)


def results_on_mpc(job: Job, tables: Sequence[Table], timeout: float = 50) -> dict[str, Result]:
    """``(value, n, note)`` per analysis id, as a study on MPC releases them."""
    plans = job.plans("mpc")
    gates = job.release_gates(plans)
    jobs = []
    for pid, table in enumerate(tables):
        parts = local_contributions(job, table, "mpc")
        steps = mpc.site_steps(parts, job.release_gates([p.plan for p in parts]),
                               job.min_cohort)
        jobs.append(MpcJob(job.job_id, pid, job.party_names(), steps, peer_timeout=30.0))
    released = run_local(jobs, timeout=timeout)[0]
    return {a.id: result_of(a, job, mpc.released_from(plan, released.totals(a.id), gate))
            for a, plan, gate in zip(job.analyses, plans, gates, strict=True)}


def results_on_ckks(job: Job, tables: Sequence[Table], params: CkksParams | None = None,
                    release_bits: int = 20) -> dict[str, Result]:
    """``(value, n, note)`` per analysis id, as a study on CKKS releases them."""
    params = params or CkksParams()
    holder = KeyHolder.create(params, max_decryptions=ckks.CkksRounds(job).max_rounds)
    public = holder.public_context_bytes()

    def send_round(round_job: Job, layout: Layout, states: dict[str, Any]) -> list[float]:
        accumulator = Accumulator(holder.params_context_bytes(), layout,
                                  min_contributions=len(tables))
        for table in tables:
            parts = local_contributions(round_job, table, "ckks")
            accumulator.add(encrypt_packed(public, ckks.site_vector(parts, states), layout))
        return release_rounding(holder.decrypt(accumulator.result(), layout), release_bits)

    rounds = ckks.run_rounds(job, params, send_round)
    return {a.id: result_of(a, job, rounds.released[a.id]) for a in job.analyses}
