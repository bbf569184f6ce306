"""The gates' pure parts: level counts a kind adds to its sums, and the plain check the
coordinator applies on CKKS (the MPC zero test is in tests/engines)."""

from __future__ import annotations

import numpy as np

from securecalc.core.kinds._levels import Levels
from securecalc.core.plans import Gates, SumPlan, rank_releasable
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table

SCHEMA = Schema({
    "arm": Column("arm", "category", levels=("a", "b", "c")),
    "sex": Column("sex", "category", levels=("F", "M")),
    "treated": Column("treated", "int", min=0, max=1),
    "grade": Column("grade", "int", min=0, max=2),
    "sbp": Column("sbp", "float", min=80.0, max=220.0),
})


def test_levels_count_every_level_and_its_complement() -> None:
    levels = Levels.of(SCHEMA, ["arm", "sex", "treated", "grade", "sbp"])
    # arm: in and out of each of 3 levels; sex and treated: both values (each the other's
    # complement); grade and sbp are not levelled (high leverage is documented, not gated)
    assert [name for name, _ in levels.columns] == ["arm", "sex", "treated"]
    assert levels.width == 6 + 2 + 2 and levels.plan() == SumPlan.counts(10)
    table = Table.from_columns(SCHEMA, {
        "arm": ["a", "c", "a", "b"], "sex": ["F", "F", "M", "F"], "treated": [1, 0, 0, 0],
        "grade": [0, 1, 2, 2], "sbp": [120.0, 130.0, 140.0, 150.0]})
    keep = np.array([True, True, True, False])
    assert levels.local(table, keep) == (2, 1, 0, 3, 1, 2, 2, 1, 2, 1)


def test_gates_pass_cohorts_and_zero_or_large_cells() -> None:
    gates = Gates(cohort=(3,), cells=(0, 1, 2), min_cell_count=5)
    assert gates and not Gates()
    assert gates.passes([0, 5, 7, 12], 10)
    assert not gates.passes([1, 5, 7, 13], 10)  # a cell of 1
    assert not gates.passes([0, 5, 4, 9], 10)  # a cohort of 9


def test_ranks_need_min_cell_count_values_on_either_side() -> None:
    # N = 30, min_cell_count 5: ranks 5..26 are released; p = 0 and 1 are the extremes
    assert [k for k in range(1, 31) if rank_releasable(0.5, k, 30, 5)] == list(range(5, 27))
    assert rank_releasable(0.0, 1, 30, 5) and rank_releasable(1.0, 30, 30, 5)
