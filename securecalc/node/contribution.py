"""What a node contributes to a job: its local inputs, shaped for each engine.

Everything here runs on the node's own rows in the clear, with numpy; only its output (a few
numbers per analysis, or for order statistics the site's own sorted values, kept inside the
node's MPC worker) enters a secure computation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import ckks_encode, mpc_bound, mpc_encode
from securecalc.core.job import Job
from securecalc.core.kinds import kind_of
from securecalc.core.plans import (
    MAX_ROWS_PER_SITE,
    Gates,
    IterativePlan,
    Plan,
    SearchPlan,
    SumPlan,
    round_plan,
)
from securecalc.core.privacy import NoisePlan, RandomSource, add_noise, sample_noise
from securecalc.core.table import Table
from securecalc.core.where import parse_where
from securecalc.errors import DataError, ProtocolError


@dataclass(frozen=True)
class LocalContribution:
    analysis: Analysis
    plan: Plan
    local: Any
    #: the noise share ``local`` carries (differentially private analyses), else None
    noise: NoisePlan | None = None

    def floor(self, slot: int) -> int:
        """The least value this site may input in count slot ``slot``: 0, or minus the
        largest noise share."""
        return 0 if self.noise is None else -math.ceil(self.noise.caps[slot])


def contributions(job: Job, table: Table, engine: str,
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


def mpc_steps(parts: Sequence[LocalContribution], gates: Sequence[Gates],
              min_cohort: int) -> tuple[Any, ...]:
    """One MPC step per analysis; ``gates[i]`` are analysis i's gates (see
    :meth:`securecalc.core.job.Job.release_gates`)."""
    from securecalc.engines.mpc import job as mpc

    steps: list[Any] = []
    for part, gate in zip(parts, gates, strict=True):
        name, plan = part.analysis.id, part.plan
        if isinstance(plan, SumPlan):
            values = mpc_encode(plan, part.local)
            bound = mpc_bound(plan)
            if gate:
                floor = max(-bound, min((part.floor(i) for i in gate.cohort), default=0))
                steps.append(mpc.GatedSumStep(name, values, bound, gate.cohort, min_cohort,
                                              gate_floor=floor, cell_slots=gate.cells,
                                              cell_threshold=gate.min_cell_count))
            elif plan.suppress_below:
                floor = max(-bound, min(part.floor(i) for i in range(plan.width)))
                steps.append(mpc.SuppressedSumStep(name, values, bound, plan.suppress_below,
                                                   floor=floor))
            else:
                steps.append(mpc.SumStep(name, values, mpc_bound(plan)))
        elif isinstance(plan, SearchPlan):
            steps.append(mpc.SearchStep(name, part.local, plan.grid_points, plan.probs,
                                        plan.arity, plan.min_n, plan.min_rank))
        elif isinstance(plan, IterativePlan):
            steps.append(mpc.IterativeStep(name, plan.program, part.local, gate.cohort,
                                           max(1, min_cohort)))
        else:  # pragma: no cover - plans are a closed set
            raise ProtocolError(f"no MPC step for {type(plan).__name__}")
    return tuple(steps)


def ckks_inputs(parts: Sequence[LocalContribution], states: Mapping[str, Any]) -> list[float]:
    """Every analysis's normalised values packed into one vector, in job order.

    ``states`` holds the public state of each iterative analysis for this round.
    """
    values: list[float] = []
    for part in parts:
        plan = part.plan
        if isinstance(plan, IterativePlan):
            if part.analysis.id not in states:
                raise ProtocolError("iterative analysis without its state")
            state = states[part.analysis.id]
            values += ckks_encode(plan.program.round_plan(state),
                                  plan.program.local(state, part.local))
        else:
            values += ckks_encode(round_plan(plan, None), part.local)
    return values
