"""Moments of a 0/1 column: its sum is a count of patients, gated like a table cell."""

from __future__ import annotations

import numpy as np
import pytest

from securecalc.core.kinds import KINDS, StudyOptions
from securecalc.core.schema import Column, Schema
from tests.core.kinds_engine import analysis, run, tables_from

SCHEMA = Schema({"flag": Column("flag", "int", min=0, max=1),
                 "dose": Column("dose", "int", min=0, max=2)})


def sites(ones: int) -> list[dict[str, list[int | None]]]:
    """Three sites, 30 rows with ``flag`` present (``ones`` of them 1) and one missing."""
    flags: list[int | None] = [1] * ones + [0] * (30 - ones) + [None]
    return [{"flag": flags[i::3], "dose": [1] * len(flags[i::3])} for i in range(3)]


@pytest.mark.parametrize("kind", ["sum", "mean", "variance", "std"])
def test_one_patient_with_the_value_withholds_the_moment(kind: str) -> None:
    tables = tables_from(SCHEMA, sites(1))
    assert run({"kind": kind, "column": "flag"}, SCHEMA, tables) == (None, None)
    tables = tables_from(SCHEMA, sites(29))  # one patient without it: the same
    assert run({"kind": kind, "column": "flag"}, SCHEMA, tables) == (None, None)


@pytest.mark.parametrize(("ones", "engine"), [(0, "mpc"), (5, "mpc"), (30, "ckks"),
                                              (12, "ckks")])
def test_counts_of_zero_or_enough_are_released(ones: int, engine: str) -> None:
    tables = tables_from(SCHEMA, sites(ones))
    x = np.array([1] * ones + [0] * (30 - ones))
    value, n = run({"kind": "mean", "column": "flag"}, SCHEMA, tables, engine=engine)
    assert n == 30 and value == pytest.approx(x.mean(), rel=1e-9)
    value, n = run({"kind": "sum", "column": "flag"}, SCHEMA, tables, engine=engine)
    assert (value, n) == (ones, 30)


def test_only_exact_moments_of_0_1_columns_add_the_counts() -> None:
    kind = KINDS["mean"]
    study = StudyOptions()
    plain = analysis({"kind": "mean", "column": "dose"}, SCHEMA)
    assert kind.plan(plain, SCHEMA, "mpc", study).width == 2
    assert kind.cell_slots(plain, SCHEMA, kind.plan(plain, SCHEMA, "mpc", study)) == ()
    binary = analysis({"kind": "mean", "column": "flag"}, SCHEMA)
    plan = kind.plan(binary, SCHEMA, "mpc", study)
    assert plan.width == 4 and kind.cell_slots(binary, SCHEMA, plan) == (2, 3)
    noisy = analysis({"kind": "mean", "column": "flag", "epsilon": 1.0}, SCHEMA)
    assert kind.plan(noisy, SCHEMA, "mpc", study).width == 2
    count = analysis({"kind": "count", "column": "flag"}, SCHEMA)
    assert KINDS["count"].plan(count, SCHEMA, "mpc", study).width == 1


def test_a_ttest_of_a_0_1_column_needs_enough_patients_with_each_value_per_level() -> None:
    schema = Schema({"flag": SCHEMA["flag"],
                     "arm": Column("arm", "category", levels=("a", "b"))})

    def tables(ones_in_b: int):  # type: ignore[no-untyped-def]
        flags = [1] * 8 + [0] * 12 + [1] * ones_in_b + [0] * (20 - ones_in_b)
        arms = ["a"] * 20 + ["b"] * 20
        return tables_from(schema, [{"flag": flags[i::2], "arm": arms[i::2]} for i in range(2)])

    test = {"kind": "ttest", "column": "flag", "group": "arm", "levels": ["a", "b"]}
    assert run(test, schema, tables(1)) == (None, None)  # one patient of b has the value
    value, n = run(test, schema, tables(6))
    assert n == 40 and value["mean"] == {"a": 0.4, "b": pytest.approx(0.3)}
