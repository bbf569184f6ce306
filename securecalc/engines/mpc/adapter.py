"""How every plan shape runs on MPC, both directions: a site's local inputs to MPC steps, and
a step's released integers back to what the analysis's kind finishes.

One entry per plan shape in :data:`_SHAPES`; adding a shape adds one entry here (and one in
the CKKS adapter), nothing elsewhere. Iterative programs run inside the MPC worker; the
released totals of every round are replayed here with the same pure program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from securecalc.core.encoding import mpc_bound, mpc_decode, mpc_encode
from securecalc.core.kinds import SearchResult
from securecalc.core.local import LocalContribution
from securecalc.core.plans import Gates, IterativePlan, Plan, SearchPlan, SumPlan
from securecalc.core.release import UNGATED, Withheld
from securecalc.engines.mpc.step_specs import (
    GatedSumStep,
    IterativeStep,
    SearchStep,
    Step,
    SumStep,
    SuppressedSumStep,
    replay,
)
from securecalc.errors import ProtocolError


def site_steps(parts: Sequence[LocalContribution], gates: Sequence[Gates],
               min_cohort: int) -> tuple[Step, ...]:
    """One MPC step per analysis; ``gates[i]`` are analysis i's gates (see
    :meth:`securecalc.core.job.Job.release_gates`)."""
    return tuple(_shape_of(part.plan).step(part, gate, min_cohort)
                 for part, gate in zip(parts, gates, strict=True))


def released_from(plan: Plan, totals: Sequence[int], gate: Gates = UNGATED) -> Any:
    """Decode one MPC step's released integers for ``plan`` (gated: a verdict bit first):
    what the kind finishes, or :class:`Withheld`."""
    if gate:
        if not totals or totals[0] not in (0, 1):
            raise ProtocolError("released totals do not fit the plan")
        if totals[0] == 0:
            return Withheld()
        totals = totals[1:]
    return _shape_of(plan).decode(plan, totals)


# -- one entry per plan shape ---------------------------------------------------------------

def _sum_step(part: LocalContribution, gate: Gates, min_cohort: int) -> Step:
    plan = part.plan
    assert isinstance(plan, SumPlan)
    name = part.analysis.id
    values = mpc_encode(plan, part.local)
    bound = mpc_bound(plan)
    if gate:
        floor = max(-bound, min((part.floor(i) for i in gate.cohort), default=0))
        return GatedSumStep(name, values, bound, gate.cohort, min_cohort, gate_floor=floor,
                            cell_slots=gate.cells, cell_threshold=gate.min_cell_count)
    if plan.suppress_below:
        floor = max(-bound, min(part.floor(i) for i in range(plan.width)))
        return SuppressedSumStep(name, values, bound, plan.suppress_below, floor=floor)
    return SumStep(name, values, bound)


def _sum_released(plan: Any, totals: Sequence[int]) -> Any:
    if not plan.suppress_below:
        if len(totals) != plan.width:
            raise ProtocolError("released totals do not fit the plan")
        return mpc_decode(plan, totals)
    if len(totals) != 2 * plan.width:
        raise ProtocolError("released totals do not fit the plan")
    flags, masked = totals[: plan.width], totals[plan.width:]
    return tuple(Fraction(v) if flag else None for flag, v in zip(flags, masked, strict=True))


def _search_step(part: LocalContribution, gate: Gates, min_cohort: int) -> Step:
    plan = part.plan
    assert isinstance(plan, SearchPlan)
    return SearchStep(part.analysis.id, part.local, plan.grid_points, plan.probs, plan.arity,
                      plan.min_n, plan.min_rank)


def _search_released(plan: Any, totals: Sequence[int]) -> Any:
    if len(totals) != 1 + len(plan.probs):
        raise ProtocolError("released search results do not fit the plan")
    if totals[0] == 0 and plan.min_n > 1:
        return Withheld()
    return SearchResult(n=int(totals[0]), indices=tuple(int(t) for t in totals[1:]))


def _iterative_step(part: LocalContribution, gate: Gates, min_cohort: int) -> Step:
    plan = part.plan
    assert isinstance(plan, IterativePlan)
    return IterativeStep(part.analysis.id, plan.program, part.local, gate.cohort,
                         max(1, min_cohort))


def _iterative_released(plan: Any, totals: Sequence[int]) -> Any:
    return replay(plan.program, totals)


@dataclass(frozen=True)
class _Shape:
    #: a site's input for one analysis to its step
    step: Callable[[LocalContribution, Gates, int], Step]
    #: a step's released integers (after any gate verdict) to what the kind finishes
    decode: Callable[[Any, Sequence[int]], Any]


_SHAPES: dict[type, _Shape] = {
    SumPlan: _Shape(_sum_step, _sum_released),
    SearchPlan: _Shape(_search_step, _search_released),
    IterativePlan: _Shape(_iterative_step, _iterative_released),
}


def _shape_of(plan: Plan) -> _Shape:
    try:
        return _SHAPES[type(plan)]
    except KeyError:
        raise ProtocolError(f"no MPC form for {type(plan).__name__}") from None


__all__ = ["released_from", "site_steps"]
