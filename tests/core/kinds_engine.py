"""A plaintext stand-in for the secure engines, for the kinds' unit tests.

Every site's local input is checked against its plan (width, integral slots, per-slot bounds
scaled to the site's row count, the MPC encoding bound), then the inputs are added:

* ``exact``: Fractions, what MPC releases for integral slots and nearly so for others;
* ``mpc``: through the real fixed-point encoding (``mpc_encode`` / ``mpc_decode``);
* ``ckks``: normalised with the plan's scales, added as floats with a relative noise of
  1e-10 of the largest normalised total (a pessimistic stand-in for CKKS error), decoded.

Search plans are answered by a search over pooled counts; iterative plans run their rounds.
The gates apply as the engines apply them: an analysis whose cohort or cell gates fail gives
``(None, None)``; a search gives N only from ``min_n`` and skips probabilities whose rank is
not releasable.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import (
    FLOAT_SLACK,
    ckks_decode,
    ckks_encode,
    mpc_bound,
    mpc_decode,
    mpc_encode,
)
from securecalc.core.kinds import KINDS, SearchResult, StudyOptions
from securecalc.core.kinds.order import target_rank
from securecalc.core.local_stats import Histogram
from securecalc.core.plans import (
    MAX_ROWS_PER_SITE,
    Gates,
    IterativePlan,
    SearchPlan,
    SumPlan,
    rank_releasable,
)
from securecalc.core.schema import Schema
from securecalc.core.study_model import analysis_from_mapping, check_analyses
from securecalc.core.table import Table
from securecalc.core.where import parse_where

STUDY = StudyOptions(min_cell_count=5)
#: no gates: for tests of the finishing formulas on tiny cohorts
UNGATED_STUDY = StudyOptions(min_cell_count=1, min_cohort=1)
UNGATED = Gates()


def analysis(raw: Mapping[str, Any], schema: Schema) -> Analysis:
    """A validated analysis (and its validated form re-validates to itself)."""
    parsed = analysis_from_mapping({"id": "a", **raw}, index=0, schema=schema)
    check_analyses([parsed], schema)
    json.dumps(parsed.table())
    return parsed


def tables_from(schema: Schema, sites: Sequence[Mapping[str, Any]]) -> list[Table]:
    return [Table.from_columns(schema, data) for data in sites]


def check_input(plan: SumPlan, values: Sequence[Any], rows: int) -> None:
    """A site's input fits the plan: the per-row share of every bound, and the MPC encoding."""
    assert len(values) == plan.width
    share = Fraction(max(rows, 1), MAX_ROWS_PER_SITE)
    for i, (v, integral, bound) in enumerate(zip(values, plan.integral, plan.bounds,
                                                 strict=True)):
        exact = Fraction(v)
        if integral:
            assert exact.denominator == 1, f"slot {i} should be an integer, got {v!r}"
            assert abs(exact) <= Fraction(bound) * share, f"slot {i}: {v} > {bound} * {share}"
        else:
            assert abs(exact) <= Fraction(bound) * share * (1 + FLOAT_SLACK), \
                f"slot {i}: {float(exact)} > {float(bound * share)}"
    assert all(Fraction(b) >= 0 for b in plan.bounds)
    assert all(Fraction(s) > 0 for s in plan.ckks_scales)
    bound = mpc_bound(plan)
    assert all(abs(v) <= bound for v in mpc_encode(plan, values))


def add(plan: SumPlan, parts: Sequence[Sequence[Any]], mode: str,
        rng: np.random.Generator | None = None) -> tuple[Fraction, ...]:
    if mode == "exact":
        return tuple(sum((Fraction(p[i]) for p in parts), Fraction(0)) for i in range(plan.width))
    if mode == "mpc":
        encoded = [mpc_encode(plan, p) for p in parts]
        return mpc_decode(plan, [sum(e[i] for e in encoded) for i in range(plan.width)])
    assert mode == "ckks"
    normalised = np.sum([ckks_encode(plan, p) for p in parts], axis=0)
    rng = rng or np.random.default_rng(0)
    noise = 1e-10 * max(1.0, float(np.max(np.abs(normalised)))) if normalised.size else 0.0
    noisy = normalised + rng.normal(0.0, noise, normalised.shape)
    return ckks_decode(plan, noisy.tolist())


def suppress(plan: SumPlan,
             totals: Sequence[Fraction | None]) -> tuple[Fraction | None, ...]:
    if not plan.suppress_below:
        return tuple(totals)
    return tuple(t if t >= plan.suppress_below else None for t in totals)


def search(plan: SearchPlan, parts: Sequence[Histogram]) -> SearchResult:
    """The search on pooled counts: smallest grid index whose pooled count reaches the rank.

    Each site's input is its histogram over the grid (counts per grid index)."""
    for histogram in parts:
        keys, counts = histogram.keys, histogram.counts
        assert keys.dtype == np.int64 and counts.dtype == np.int64
        assert np.all(np.diff(keys) > 0) and np.all(counts > 0)
        assert keys.size == 0 or (keys[0] >= 0 and keys[-1] < plan.grid_points)
    n = sum(p.n for p in parts)
    if n == 0 or n < plan.min_n:
        return SearchResult(0, tuple(-1 for _ in plan.probs))

    def count(i: int) -> int:
        return sum(p.at_or_below([i])[0] for p in parts)

    found = []
    for p in plan.probs:
        rank = target_rank(p, n)
        if not rank_releasable(p, rank, n, plan.min_rank):
            found.append(-1)
            continue
        lo, hi = 0, plan.grid_points - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if count(mid) >= rank:
                hi = mid
            else:
                lo = mid + 1
        found.append(lo)
    return SearchResult(n, tuple(found))


def run(raw: Mapping[str, Any] | Analysis, schema: Schema, tables: Sequence[Table], *,
        engine: str = "mpc", mode: str = "exact", study: StudyOptions = STUDY,
        where: str | None = None) -> tuple[Any, int | None]:
    """``(value, n)`` of an analysis computed over the sites' tables; ``(None, None)`` when
    its gates fail."""
    a = raw if isinstance(raw, Analysis) else analysis(
        {**raw, **({"where": where} if where else {})}, schema)
    kind = KINDS[a.kind]
    assert engine in kind.engines
    plan = kind.plan(a, schema, engine, study)
    locals_, rows = [], []
    for table in tables:
        mask = parse_where(a.where, schema).evaluate(table)
        locals_.append(kind.local(a, schema, table, mask, study))
        rows.append(table.n_rows)
    gates = kind.gates(a, schema, plan, study)
    released = _RELEASES[type(plan)](plan, locals_, rows, engine, mode, gates, study)
    if released is None:
        return None, None
    value, n = kind.finish(a, schema, released, study)
    json.dumps(value, allow_nan=False)
    assert isinstance(n, int)
    return value, n


def _sum_release(plan: SumPlan, locals_: Sequence[Any], rows: Sequence[int], engine: str,
                 mode: str, gates: Gates, study: StudyOptions) -> Any:
    for values, n in zip(locals_, rows, strict=True):
        check_input(plan, values, n)
    totals = add(plan, locals_, mode)
    if not gates.passes(totals, study.min_cohort):
        return None
    return suppress(plan, totals)


def _search_release(plan: SearchPlan, locals_: Sequence[Any], rows: Sequence[int], engine: str,
                    mode: str, gates: Gates, study: StudyOptions) -> Any:
    assert engine == "mpc"
    released = search(plan, locals_)
    return None if released.n == 0 and plan.min_n > 1 else released


def _iterative_release(plan: IterativePlan, locals_: Sequence[Any], rows: Sequence[int],
                       engine: str, mode: str, gates: Gates, study: StudyOptions) -> Any:
    return iterate(plan, locals_, rows, mode, gates, study.min_cohort)


#: what each plan shape releases (None: withheld by its gates), as the engines release it
_RELEASES: dict[type, Callable[..., Any]] = {
    SumPlan: _sum_release,
    SearchPlan: _search_release,
    IterativePlan: _iterative_release,
}


def iterate(plan: IterativePlan, data: Sequence[Any], rows: Sequence[int], mode: str,
            gates: Gates = UNGATED, min_cohort: int = 1) -> Any:
    """The final state, or None when the first round fails the gates."""
    program = plan.program
    assert pickle.loads(pickle.dumps(program)) == program
    assert type(program).__repr__ is not object.__repr__
    state = program.initial_state()
    rounds = 0
    rng = np.random.default_rng(1)
    while rounds < program.max_rounds and not program.done(state):
        round_plan = program.round_plan(state)
        parts = [program.local(state, d) for d in data]
        for values, n in zip(parts, rows, strict=True):
            check_input(round_plan, values, n)
        totals = add(round_plan, parts, mode, rng)
        if rounds == 0 and not gates.passes(totals, min_cohort):
            return None
        state = program.advance(state, totals)
        assert json.loads(json.dumps(state, allow_nan=False)) == state
        rounds += 1
    assert program.done(state)
    return state


def rel_close(got: float | None, want: float, rel: float = 1e-9, abs_: float = 0.0) -> bool:
    assert got is not None
    return abs(got - want) <= max(rel * abs(want), abs_)
