"""quantiles, median, min, max: against numpy's inverted_cdf on the pooled rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from securecalc.core.kinds import KINDS
from securecalc.core.kinds.order import HistogramProgram, grid_of, target_rank
from securecalc.core.limits import CKKS_GRID_POINTS
from securecalc.core.plans import IterativePlan, SearchPlan
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, UNGATED_STUDY, analysis, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()
PROBS = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]


@pytest.fixture(scope="module")
def sites():
    data = [generate_site(i, 700 + 150 * i, np.random.default_rng([7, i])) for i in range(3)]
    return data, tables_from(SCHEMA, data)


def pooled(data, column, keep=None):
    values = np.concatenate([d[column] for d in data])
    if keep is not None:
        values = values[np.concatenate([keep(d) for d in data])]
    return values[~np.isnan(values.astype(float))]


@pytest.mark.parametrize("engine", ["mpc", "ckks"])
@pytest.mark.parametrize("column", ["age", "sbp", "followup_days"])
def test_int_columns_are_exact(sites, engine: str, column: str) -> None:
    data, tables = sites
    x = pooled(data, column)
    value, n = run({"kind": "quantiles", "column": column, "probs": PROBS}, SCHEMA, tables,
                   engine=engine)
    assert n == x.size
    assert value == {str(p): int(np.quantile(x, p, method="inverted_cdf")) for p in PROBS}
    assert all(type(v) is int for v in value.values())
    for kind, p in (("median", 0.5), ("min", 0), ("max", 1)):
        got, n = run({"kind": kind, "column": column}, SCHEMA, tables, engine=engine)
        assert got == np.quantile(x, p, method="inverted_cdf") and n == x.size


@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_float_column_rounds_up_to_the_grid(sites, engine: str) -> None:
    data, tables = sites
    x = pooled(data, "bmi")  # 2% missing
    column = SCHEMA["bmi"]
    for resolution in (None, 0.1, 0.25):
        raw = {"kind": "quantiles", "column": "bmi", "probs": PROBS}
        if resolution is not None:
            raw["resolution"] = resolution
        value, n = run(raw, SCHEMA, tables, engine=engine)
        assert n == x.size
        grid = grid_of(column, resolution)
        r = resolution or (column.max - column.min) / 10000
        assert grid.resolution == r
        for p in PROBS:
            exact = float(np.quantile(x, p, method="inverted_cdf"))
            got = value[str(p)]
            assert exact - 1e-9 <= got <= exact + r + 1e-9
            # exactly the grid point at or above the quantile (values on the grid stay put)
            k = math.ceil((exact - column.min) / r - 1e-9)
            assert got == column.min + k * r
        if resolution == 0.1:  # the data are recorded at 0.1: exact
            assert all(abs(value[str(p)] - np.quantile(x, p, method="inverted_cdf")) < 1e-9
                       for p in PROBS)


def test_filter_ties_and_missing(sites) -> None:
    data, tables = sites
    x = pooled(data, "cholesterol", keep=lambda d: (d["sex"] == "F") & (d["age"] >= 60))
    value, n = run({"kind": "median", "column": "cholesterol", "resolution": 0.01}, SCHEMA,
                   tables, where="sex == 'F' and age >= 60")
    assert n == x.size
    assert abs(value - np.quantile(x, 0.5, method="inverted_cdf")) < 1e-9


def test_heavy_ties_and_a_value_at_one_site_only() -> None:
    schema = Schema({"k": Column("k", "int", min=-5, max=5)})
    sites = [{"k": [1, 1, 1, 1, None, 2]}, {"k": [1, 1, 2, 2]}, {"k": [-5, 5]}]
    tables = tables_from(schema, sites)
    x = np.array([1, 1, 1, 1, 2, 1, 1, 2, 2, -5, 5])
    want = {str(p): int(np.quantile(x, p, method="inverted_cdf")) for p in PROBS}
    for engine in ("mpc", "ckks"):
        value, n = run({"kind": "quantiles", "column": "k", "probs": PROBS}, schema, tables,
                       engine=engine, study=UNGATED_STUDY)
        assert n == 11 and value == want
        # gated: only ranks 5..7 of 11 (at least 5 values on either side), and p = 0 and 1
        value, n = run({"kind": "quantiles", "column": "k", "probs": PROBS}, schema, tables,
                       engine=engine)
        assert n == 11 and value == {str(p): want[str(p)] if p in (0, 1) or
                                     5 <= target_rank(p, 11) <= 7 else None for p in PROBS}


def test_int_resolution_coarsens() -> None:
    schema = Schema({"k": Column("k", "int", min=0, max=100)})
    tables = tables_from(schema, [{"k": [0, 7, 10, 11]}, {"k": [99, 100]}, {"k": []}])
    value, _ = run({"kind": "quantiles", "column": "k", "probs": [0, 0.5, 1], "resolution": 10},
                   schema, tables, study=UNGATED_STUDY)
    assert value == {"0": 0, "0.5": 10, "1": 100}


def test_empty_cohort_is_null(sites) -> None:
    _, tables = sites
    for engine in ("mpc", "ckks"):
        for kind in ("median", "min", "max"):
            assert run({"kind": kind, "column": "age"}, SCHEMA, tables, engine=engine,
                       where="age > 200", study=UNGATED_STUDY) == (None, 0)
            assert run({"kind": kind, "column": "age"}, SCHEMA, tables, engine=engine,
                       where="age > 200") == (None, None)  # below min_cohort: withheld
        assert run({"kind": "quantiles", "column": "age", "probs": [0.5]}, SCHEMA, tables,
                   engine=engine, where="age > 200") == (None, None)


def test_rank_reads_p_as_written() -> None:
    # numpy multiplies in float64: 0.07 * 100 = 7.000000000000001 and it takes the 8th value;
    # the kinds (and the MPC search) take the 7th, as p * N = 7 exactly.
    assert target_rank(0.07, 100) == 7
    assert np.quantile(np.arange(100), 0.07, method="inverted_cdf") == 7  # the 8th
    assert target_rank(0.1, 10) == 1 and target_rank(0, 10) == 1 and target_rank(1, 10) == 10
    assert target_rank(0.5, 0) == 1


def test_plans() -> None:
    a = analysis({"kind": "quantiles", "column": "age", "probs": [0.5, 0.9]}, SCHEMA)
    plan = KINDS["quantiles"].plan(a, SCHEMA, "mpc", STUDY)
    assert plan == SearchPlan(lo=18.0, hi=95.0, resolution=1.0, probs=(0.5, 0.9), min_n=10,
                              min_rank=5)
    assert plan.grid_points == 78
    ckks = KINDS["quantiles"].plan(a, SCHEMA, "ckks", STUDY)
    assert isinstance(ckks, IterativePlan) and ckks.program == HistogramProgram(78)
    bmi = analysis({"kind": "median", "column": "bmi"}, SCHEMA)
    assert KINDS["median"].plan(bmi, SCHEMA, "mpc", STUDY).grid_points == 10001
    fine = analysis({"kind": "median", "column": "bmi", "resolution": 0.0001}, SCHEMA)
    with pytest.raises(ConfigError, match=f"450001 grid points; the limit is "
                                          f"{CKKS_GRID_POINTS.value}.*analysis 'a'"):
        KINDS["median"].plan(fine, SCHEMA, "ckks", STUDY)
    assert KINDS["median"].plan(fine, SCHEMA, "mpc", STUDY).grid_points == 450001


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "quantiles", "column": "age"}, "probs", "needs a probs"),
        ({"kind": "quantiles", "column": "age", "probs": [0.5, 1.5]}, "probs", "[0, 1]"),
        ({"kind": "quantiles", "column": "age", "probs": []}, "probs", "at least 1"),
        ({"kind": "quantiles", "column": "age", "probs": [0.5, 0.5]}, "probs", "twice"),
        ({"kind": "quantiles", "column": "sex", "probs": [0.5]}, "column", "numeric"),
        ({"kind": "median", "column": "weight"}, "column", "unknown column 'weight'"),
        ({"kind": "median", "column": "age", "resolution": 0.5}, "resolution", "whole"),
        ({"kind": "median", "column": "bmi", "resolution": -1}, "resolution", "positive"),
        ({"kind": "median", "column": "bmi", "resolution": 1e-12}, "resolution", "too fine"),
        ({"kind": "min", "column": "age", "probs": [0.5]}, "probs", "unknown key"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)
