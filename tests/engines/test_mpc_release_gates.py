"""Release gates with real MPyC workers: cell gates (0 or at least k) beside cohort gates in
one zero test, the gated first round of an iterative step, and the order-statistic gates."""

from __future__ import annotations

import numpy as np
import pytest

from securecalc.engines.mpc import (
    GatedSumStep,
    IterativeStep,
    MpcJob,
    SearchStep,
    replay,
    run_local,
)
from securecalc.engines.mpc.steps import gated_sum_plan
from securecalc.engines.mpc.steps_gate import zero_test_rounds
from tests.engines.test_mpc_steps_iterative import TanhLocation

NAMES = ("hospital-a", "hospital-b", "hospital-c")
BOUND = 2**40
#: name: (per-party values, cohort slots, cell slots); cohort threshold 10, cells 5
CELLS = {
    "clean": ([(0, 2, 3, 4), (0, 3, 0, 4), (0, 0, 2, 4)], (3,), (0, 1, 2)),  # 0, 5, 5 / n 12
    "small-cell": ([(1, 2, 3, 4), (0, 3, 0, 4), (0, 0, 2, 4)], (3,), (0, 1, 2)),  # cell 1
    "cells-only": ([(4, 0), (0, 0), (0, 0)], (), (0, 1)),  # cell 4
    "small-cohort": ([(2, 2), (2, 0), (1, 1)], (1,), (0,)),  # cohort 3
}


@pytest.mark.timeout(60)
def test_cell_gates_release_only_tables_without_small_nonzero_cells() -> None:
    jobs = [MpcJob("cells", p, NAMES, tuple(
        GatedSumStep(name, values[p], BOUND, cohort, 10, 0, cells, 5)
        for name, (values, cohort, cells) in CELLS.items())) for p in range(3)]
    results = run_local(jobs, timeout=50)
    for name, (values, cohort, cells) in CELLS.items():
        pooled = tuple(int(v) for v in np.sum(values, axis=0))
        passes = all(pooled[i] >= 10 for i in cohort) and all(
            pooled[i] in (0,) or pooled[i] >= 5 for i in cells)
        want = (1, *pooled) if passes else (0,)
        step = GatedSumStep(name, pooled, BOUND, cohort, 10, 0, cells, 5)
        by_zero, rounds = gated_sum_plan(step, 3)
        assert by_zero and rounds == zero_test_rounds(10 * len(cohort) + 4 * len(cells))
        for r in results:
            assert r.totals(name) == want, name
            assert next(s for s in r.steps if s.name == name).rounds == rounds
    assert CELLS and results[0].totals("clean")[0] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("rows", "passes"), [(4, True), (3, False)])
def test_an_iterative_step_gates_its_first_round(rows: int, passes: bool) -> None:
    program = TanhLocation(amax=10.0)
    rng = np.random.default_rng(rows)
    datas = [rng.uniform(-3, 3, rows) for _ in NAMES]  # n = 12 or 9 against 10
    jobs = [MpcJob(f"gated-{rows}", p, NAMES, (
        IterativeStep("gated", program, datas[p], (0,), 10),
        IterativeStep("plain", program, datas[p]))) for p in range(3)]
    results = run_local(jobs, timeout=50)
    for r in results:
        gated, plain = r.totals("gated"), r.totals("plain")
        assert gated == ((1, *plain) if passes else (0,))
        if passes:
            assert replay(program, gated[1:]) == replay(program, plain)


@pytest.mark.timeout(60)
def test_a_search_opens_n_only_above_min_n_and_withholds_edge_ranks() -> None:
    rng = np.random.default_rng(5)
    big = [np.sort(rng.integers(0, 100, 10)) for _ in NAMES]  # N = 30
    tiny = [np.array([7]), np.array([], dtype=np.int64), np.array([9])]  # N = 2
    probs = (0.0, 0.1, 0.2, 0.5, 0.9, 1.0)
    jobs = [MpcJob("ranks", p, NAMES, (
        SearchStep("big", big[p], 100, probs, 0, 10, 5),
        SearchStep("tiny", tiny[p], 100, probs, 0, 10, 5))) for p in range(3)]
    results = run_local(jobs, timeout=50)
    pooled = np.sort(np.concatenate(big))
    # ranks 1, 3, 6, 15, 27, 30 of N = 30: 3 and 27 have fewer than 5 values on one side
    want = [int(pooled[k - 1]) for k in (1, 3, 6, 15, 27, 30)]
    want[1] = want[4] = -1
    for r in results:
        assert r.totals("big") == (30, *want)
        assert r.totals("tiny") == (0, *([-1] * len(probs)))
