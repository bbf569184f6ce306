"""From what an engine released to what a kind finishes, the same for every engine."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from securecalc.core.encoding import ckks_decode, mpc_decode
from securecalc.core.kinds import SearchResult
from securecalc.core.plans import IterativePlan, Plan, SearchPlan, SumPlan
from securecalc.errors import ProtocolError


def from_mpc(plan: Plan, totals: Sequence[int]) -> Any:
    """Decode one MPC step's released integers for ``plan``."""
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
        return SearchResult(n=int(totals[0]), indices=tuple(int(t) for t in totals[1:]))
    if isinstance(plan, IterativePlan):
        from securecalc.engines.mpc.steps import replay

        return replay(plan.program, totals)
    raise ProtocolError(f"unknown plan {type(plan).__name__}")


def from_ckks(plan: SumPlan, values: Sequence[float]) -> tuple[Fraction | None, ...]:
    """Decode decrypted values; counts below the plan's threshold are withheld here, before
    anything is released (the coordinator is the only party that decrypts)."""
    totals = ckks_decode(plan, values)
    if not plan.suppress_below:
        return totals
    return tuple(t if t >= plan.suppress_below else None for t in totals)
