"""The engines' adapters: both directions of every plan shape, and the CKKS rounds.

A job mixing every shape (sums, a suppressed and gated table, an order statistic: a search
on MPC and an iterative histogram on CKKS, logistic regression's Newton rounds) runs through
each adapter with the real engines and must give what the plaintext stand-in gives.
:class:`CkksRounds` is also driven by hand, with sums computed in the clear, to check what
each round carries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import ckks_encode
from securecalc.core.local import local_contributions
from securecalc.core.plans import IterativePlan, SearchPlan, SumPlan
from securecalc.core.release import Withheld
from securecalc.core.study_model import analysis_from_mapping
from securecalc.core.table import Table
from securecalc.engines.ckks import adapter as ckks
from securecalc.engines.mpc import adapter as mpc
from securecalc.engines.mpc.step_specs import (
    GatedSumStep,
    IterativeStep,
    SearchStep,
    SumStep,
)
from securecalc.errors import ProtocolError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, run
from tests.engines.adapter_runs import new_job, results_on_ckks, results_on_mpc

SCHEMA = synth_schema()
RAW = [
    {"id": "mean_age", "kind": "mean", "column": "age"},
    {"id": "crosstab", "kind": "crosstab", "row": "sex", "col": "arm"},
    {"id": "median_bmi", "kind": "median", "column": "bmi"},
    {"id": "logreg", "kind": "logreg", "y": "diabetes", "x": ["age", "sex"], "max_iter": 8},
]


def analyses() -> list[Analysis]:
    return [analysis_from_mapping(raw, index=i, schema=SCHEMA) for i, raw in enumerate(RAW)]


@pytest.fixture(scope="module")
def tables() -> list[Table]:
    return [Table.from_columns(SCHEMA, generate_site(i, 300 + 50 * i,
                                                     np.random.default_rng([31, i])))
            for i in range(3)]


def close(got: Any, want: Any, rel: float) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(
            close(got[k], want[k], rel) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(close(g, w, rel) for g, w in zip(got, want,
                                                                             strict=True))
    if isinstance(want, float) and not isinstance(got, bool):
        return got == pytest.approx(want, rel=rel, abs=rel)
    return bool(got == want)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_every_shape_matches_the_plaintext_stand_in(tables: list[Table], engine: str) -> None:
    job = new_job(SCHEMA, analyses(), min_cohort=STUDY.min_cohort,
                  min_cell_count=STUDY.min_cell_count)
    shapes = {type(p) for p in job.plans(engine)}
    assert shapes == ({SumPlan, SearchPlan, IterativePlan} if engine == "mpc"
                      else {SumPlan, IterativePlan})
    results = (results_on_mpc if engine == "mpc" else results_on_ckks)(job, tables)
    for a in job.analyses:
        want = run(a, SCHEMA, tables, engine=engine, mode="exact" if engine == "mpc" else "ckks")
        value, n, _ = results[a.id]
        assert n == want[1], a.id
        assert close(value, want[0], 1e-9 if engine == "mpc" else 1e-5), a.id


def test_mpc_steps_by_shape(tables: list[Table]) -> None:
    job = new_job(SCHEMA, analyses())
    parts = local_contributions(job, tables[0], "mpc")
    steps = mpc.site_steps(parts, job.release_gates([p.plan for p in parts]), job.min_cohort)
    assert [type(s) for s in steps] == [GatedSumStep, GatedSumStep, SearchStep, IterativeStep]
    ungated = new_job(SCHEMA, analyses()[:1], min_cohort=1)
    parts = local_contributions(ungated, tables[0], "mpc")
    assert [type(s) for s in mpc.site_steps(parts, ungated.release_gates(
        [p.plan for p in parts]), 1)] == [SumStep]


def test_mpc_releases_that_do_not_fit_are_refused() -> None:
    job = new_job(SCHEMA, analyses())
    plans, gates = job.plans("mpc"), job.release_gates(job.plans("mpc"))
    assert isinstance(mpc.released_from(plans[0], [0], gates[0]), Withheld)
    for bad in ([], [2, 1, 2, 3], [1, 5]):
        with pytest.raises(ProtocolError):
            mpc.released_from(plans[0], bad, gates[0])
    with pytest.raises(ProtocolError, match="search"):
        mpc.released_from(plans[2], [10], gates[2])
    with pytest.raises(ProtocolError, match="no MPC form"):
        mpc.released_from(object(), [1])  # type: ignore[arg-type]


def clear_sum(rounds: ckks.CkksRounds, tables: list[Table], states: dict[str, Any]) -> list[float]:
    """A round's sum over the sites, in the clear (what the compute node adds encrypted)."""
    job = rounds.round_job()
    vectors = [ckks.site_vector(local_contributions(job, t, "ckks"), states) for t in tables]
    return [float(v) for v in np.sum(vectors, axis=0)]


def test_ckks_rounds_carry_only_the_analyses_still_iterating(tables: list[Table]) -> None:
    job = new_job(SCHEMA, analyses())
    rounds = ckks.CkksRounds(job)
    plans = job.plans("ckks")
    assert rounds.max_rounds == 1 + max(p.program.max_rounds for p in plans
                                        if isinstance(p, IterativePlan))
    assert rounds.pending() == [a.id for a in job.analyses]
    assert set(rounds.states()) == {"median_bmi", "logreg"}
    assert rounds.round_job().job_id == "adapters-job.0"
    assert rounds.n_values() == sum(rounds.layout_widths())
    seen = 0
    while not rounds.done:
        states = rounds.states()
        assert set(rounds.pending()) <= ({"median_bmi", "logreg"} if seen else
                                         {a.id for a in job.analyses})
        assert [a.id for a in rounds.round_job().analyses] == rounds.pending()
        values = clear_sum(rounds, tables, states)
        assert len(values) == rounds.n_values()
        rounds.absorb(values)
        seen += 1
    assert seen == rounds.rounds > 1
    assert set(rounds.released) == {a.id for a in job.analyses}
    assert not any(isinstance(r, Withheld) for r in rounds.released.values())
    assert rounds.widths["mean_age"] == ckks.sum_form(plans[0]).width
    with pytest.raises(ProtocolError, match="within their rounds"):
        for _ in range(rounds.max_rounds + 1):
            rounds.round_job()
            rounds.rounds += 1


def test_ckks_first_round_is_gated_and_layout_checked(tables: list[Table]) -> None:
    job = new_job(SCHEMA, analyses(), min_cohort=10_000)
    rounds = ckks.CkksRounds(job)
    with pytest.raises(ProtocolError, match="layout"):
        rounds.absorb([0.0])
    rounds.absorb(clear_sum(rounds, tables, rounds.states()))
    assert rounds.done and rounds.rounds == 1
    assert all(isinstance(r, Withheld) for r in rounds.released.values())


def test_ckks_site_vector_needs_each_iterative_state(tables: list[Table]) -> None:
    job = new_job(SCHEMA, analyses())
    parts = local_contributions(job, tables[0], "ckks")
    with pytest.raises(ProtocolError, match="without its state"):
        ckks.site_vector(parts, {})
    one_round = parts[:2]
    assert ckks.site_vector(one_round, {}) == [
        *ckks_encode(ckks.sum_form(one_round[0].plan), one_round[0].local),
        *ckks_encode(ckks.sum_form(one_round[1].plan), one_round[1].local)]
    with pytest.raises(ProtocolError, match="no CKKS form"):
        ckks.sum_form(SearchPlan(0.0, 1.0, 0.5, (0.5,)))
