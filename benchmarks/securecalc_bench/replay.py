"""The same analysis in the clear through the kind contract: exact totals, no engine.

Used as a second reference when the numpy value cannot be aligned with what a kind releases
(a new kind with its own output format): its value has exactly the kind's structure, and the
difference from a secure engine's value is the error that engine adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.kinds import SearchResult, StudyOptions, kind_of
from securecalc.core.local_stats import Histogram
from securecalc.core.plans import IterativePlan, SearchPlan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table
from securecalc.core.where import parse_where


def _exact_sum(parts: Sequence[Sequence[Any]]) -> tuple[Fraction, ...]:
    return tuple(sum((Fraction(p[i]) for p in parts), Fraction(0)) for i in range(len(parts[0])))


def plain_value(analysis: Analysis, schema: Schema, tables: Sequence[Table],
                options: StudyOptions | None = None) -> tuple[Any, int]:
    """``(value, n)`` of ``analysis`` with every total computed exactly in the clear."""
    options = options or StudyOptions()
    kind = kind_of(analysis.kind)
    plan = kind.plan(analysis, schema, "mpc", options)
    predicate = parse_where(analysis.where, schema)
    locals_ = [kind.local(analysis, schema, t, predicate.evaluate(t), options) for t in tables]
    if isinstance(plan, SumPlan):
        totals = _exact_sum(locals_)
        threshold = plan.suppress_below
        released: Any = tuple(None if threshold and t < threshold else t for t in totals)
    elif isinstance(plan, SearchPlan):
        released = _search(plan, locals_)
    elif isinstance(plan, IterativePlan):
        program = plan.program
        state = program.initial_state()
        for _ in range(program.max_rounds):
            if program.done(state):
                break
            state = program.advance(state, _exact_sum([program.local(state, d)
                                                       for d in locals_]))
        released = state
    else:  # pragma: no cover - plans are a closed set
        raise TypeError(type(plan).__name__)
    return kind.finish(analysis, schema, released, options)


def _search(plan: SearchPlan, parts: Sequence[Histogram]) -> SearchResult:
    from securecalc.engines.mpc.step_specs import search_target
    from securecalc.engines.mpc.steps_search import plain_search

    pooled = np.zeros(plan.grid_points, dtype=np.int64)
    for histogram in parts:  # each site's counts per grid index
        np.add.at(pooled, histogram.keys, histogram.counts)
    counts = np.cumsum(pooled)
    found = plain_search(counts, plan.probs, plan.arity or 2, search_target)  # any arity
    return SearchResult(n=int(found[0]), indices=tuple(int(i) for i in found[1:]))


__all__ = ["plain_value"]
