"""A site's local inputs to a job: one per analysis, computed on its own rows in the clear.

Pure numpy, the same for every engine; only the output (a few numbers per analysis, or for
order statistics the site's own sorted values, kept inside the node's MPC worker) enters a
secure computation. Each engine's adapter shapes these inputs for its engine
(:mod:`securecalc.engines.mpc.adapter`, :mod:`securecalc.engines.ckks.adapter`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from securecalc.core.analyses import Analysis
from securecalc.core.job import Job
from securecalc.core.kinds import kind_of
from securecalc.core.plans import MAX_ROWS_PER_SITE, Plan
from securecalc.core.privacy import NoisePlan, RandomSource, add_noise, sample_noise
from securecalc.core.table import Table
from securecalc.core.where import parse_where
from securecalc.errors import DataError


@dataclass(frozen=True)
class LocalContribution:
    """One analysis's input from one site, under the plan the engine runs."""

    analysis: Analysis
    plan: Plan
    local: Any
    #: the noise share ``local`` carries (differentially private analyses), else None
    noise: NoisePlan | None = None

    def floor(self, slot: int) -> int:
        """The least value this site may input in count slot ``slot``: 0, or minus the
        largest noise share."""
        return 0 if self.noise is None else -math.ceil(self.noise.caps[slot])


def local_contributions(job: Job, table: Table, engine: str,
                        rng: RandomSource | None = None) -> list[LocalContribution]:
    """Local inputs for every analysis of the job, in job order.

    A differentially private analysis's input carries this site's noise share (drawn from
    ``rng``, by default the system's cryptographic generator; see
    :mod:`securecalc.core.privacy`)."""
    if table.n_rows > MAX_ROWS_PER_SITE:
        raise DataError(f"this site's rows exceed the limit of {MAX_ROWS_PER_SITE} per site")
    parts = []
    for analysis, (plan, noise) in zip(job.analyses, job.plans_and_noise(engine), strict=True):
        mask = parse_where(analysis.where, job.schema).evaluate(table)
        local = kind_of(analysis.kind).local(analysis, job.schema, table, mask, job.options)
        if noise is not None:
            local = add_noise(local, sample_noise(noise, rng))
        parts.append(LocalContribution(analysis, plan, local, noise))
    return parts
