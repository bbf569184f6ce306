"""From what an engine released to what a kind finishes, the same for every engine."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import ckks_decode, mpc_decode
from securecalc.core.job import Job
from securecalc.core.kinds import SearchResult, kind_of
from securecalc.core.plans import Gates, IterativePlan, Plan, SearchPlan, SumPlan
from securecalc.core.privacy import describe
from securecalc.errors import ProtocolError

#: no gates
UNGATED = Gates()


class Withheld:
    """An analysis whose gates failed (a cohort below ``min_cohort`` or a cell below
    ``min_cell_count``): nothing was released."""


def finish(analysis: Analysis, job: Job, released: Any) -> tuple[Any, int | None, str | None]:
    """``(value, n, note)`` of one analysis from what its engine released."""
    kind = kind_of(analysis.kind)
    if isinstance(released, Withheld):
        return None, None, kind.withheld_note(analysis, job.options)
    value, n = kind.finish(analysis, job.schema, released, job.options)
    note = kind.release_note(analysis, job.schema, released, job.options)
    if analysis.epsilon is None:
        return value, n, note
    # the kinds that take epsilon have one SumPlan on every engine
    noise = job.noise_plans("mpc")[job.analyses.index(analysis)]
    assert noise is not None
    return value, n, describe(noise, len(job.parties))


def from_mpc(plan: Plan, totals: Sequence[int], gate: Gates = UNGATED) -> Any:
    """Decode one MPC step's released integers for ``plan`` (gated: a verdict bit first)."""
    if gate:
        if not totals or totals[0] not in (0, 1):
            raise ProtocolError("released totals do not fit the plan")
        if totals[0] == 0:
            return Withheld()
        totals = totals[1:]
    if isinstance(plan, SumPlan):
        if not plan.suppress_below:
            if len(totals) != plan.width:
                raise ProtocolError("released totals do not fit the plan")
            return mpc_decode(plan, totals)
        if len(totals) != 2 * plan.width:
            raise ProtocolError("released totals do not fit the plan")
        flags, masked = totals[: plan.width], totals[plan.width:]
        return tuple(Fraction(v) if flag else None for flag, v in zip(flags, masked, strict=True))
    if isinstance(plan, SearchPlan):
        if len(totals) != 1 + len(plan.probs):
            raise ProtocolError("released search results do not fit the plan")
        if totals[0] == 0 and plan.min_n > 1:
            return Withheld()
        return SearchResult(n=int(totals[0]), indices=tuple(int(t) for t in totals[1:]))
    if isinstance(plan, IterativePlan):
        from securecalc.engines.mpc.steps import replay

        return replay(plan.program, totals)
    raise ProtocolError(f"unknown plan {type(plan).__name__}")


def from_ckks(plan: SumPlan, values: Sequence[float], gate: Gates = UNGATED,
              min_cohort: int = 0) -> Any:
    """Decode decrypted values; analyses whose gates fail and counts below the plan's
    threshold are withheld here, before anything is released (the coordinator is the only
    party that decrypts)."""
    totals = ckks_decode(plan, values)
    if not gate.passes(totals, min_cohort):
        return Withheld()
    if not plan.suppress_below:
        return tuple(totals)
    return tuple(t if t >= plan.suppress_below else None for t in totals)
