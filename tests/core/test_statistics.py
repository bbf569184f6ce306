"""Sufficient statistics per site, pooled and finished, against numpy on the pooled rows.

The oracle is always an independent computation on the pooled rows (numpy, or exact Python
integers and the standard library's ``statistics`` where numpy's float64 cannot be exact);
the filter oracle is plain Python with SQL's three-valued logic, not the where-module.
"""

from __future__ import annotations

import math
import statistics as pystats
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecalc.core.analyses import Analysis
from securecalc.core.schema import Column, Schema
from securecalc.core.statistics import (
    MAX_ROWS_PER_SITE,
    WIDTH,
    StatLayout,
    add_statistics,
    exact_int_sum,
    finish,
    layout_of,
    local_statistics,
)
from securecalc.core.table import Table

pytestmark = pytest.mark.timeout(60)

EPS = float(np.finfo(np.float64).eps)
LEVELS = ("a", "b", "c")
KINDS = ("count", "sum", "mean", "variance", "std")
Row = dict[str, object]
Truth = bool | None


# --------------------------------------------------------------------------- filter oracle


def k_and(a: Truth, b: Truth) -> Truth:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def k_or(a: Truth, b: Truth) -> Truth:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def k_not(a: Truth) -> Truth:
    return None if a is None else not a


def cmp(value: object, test: Callable[[object], bool]) -> Truth:
    return None if value is None else test(value)


@dataclass(frozen=True)
class Filter:
    template: str | None
    oracle: Callable[[Row, int, float], Truth]

    def text(self, t: int, u: float) -> str | None:
        return None if self.template is None else self.template.format(t=t, u=repr(u))


FILTERS = (
    Filter(None, lambda r, t, u: True),
    Filter("g == 'a'", lambda r, t, u: cmp(r["g"], lambda g: g == "a")),
    Filter("k >= {t}", lambda r, t, u: cmp(r["k"], lambda k: k >= t)),
    Filter("not (f < {u})", lambda r, t, u: k_not(cmp(r["f"], lambda f: f < u))),
    Filter(
        "g in ['a', 'c'] and k < {t}",
        lambda r, t, u: k_and(cmp(r["g"], lambda g: g in ("a", "c")), cmp(r["k"], lambda k: k < t)),
    ),
    Filter(
        "g == 'b' or f >= {u}",
        lambda r, t, u: k_or(cmp(r["g"], lambda g: g == "b"), cmp(r["f"], lambda f: f >= u)),
    ),
    Filter(
        "not (k != {t} and g != 'b')",
        lambda r, t, u: k_not(
            k_and(cmp(r["k"], lambda k: k != t), cmp(r["g"], lambda g: g != "b"))
        ),
    ),
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Study:
    schema: Schema
    rows: list[Row]
    cuts: list[int]  # site i holds rows[cuts[i]:cuts[i+1]]
    filter: Filter
    t: int
    u: float

    @property
    def where(self) -> str | None:
        return self.filter.text(self.t, self.u)

    def tables(self) -> list[Table]:
        spans = zip(self.cuts[:-1], self.cuts[1:], strict=True)
        return [make_table(self.schema, self.rows[a:b]) for a, b in spans]

    def selected(self) -> list[Row]:
        return [r for r in self.rows if self.filter.oracle(r, self.t, self.u) is True]


def make_table(schema: Schema, rows: Sequence[Row]) -> Table:
    return Table.from_columns(schema, {name: [r[name] for r in rows] for name in schema.names()})


@st.composite
def studies(draw: st.DrawFn, max_rows: int = 40) -> Study:
    lo_k = draw(st.integers(-(10**6), 10**6))
    hi_k = draw(st.integers(lo_k, lo_k + draw(st.sampled_from([0, 1, 7, 10**3, 10**6]))))
    lo_f = draw(st.floats(-1e6, 1e6))
    hi_f = lo_f + draw(st.sampled_from([0.0, 1e-3, 1.0, 45.0, 1e6]))
    schema = Schema(
        {
            "k": Column("k", "int", min=lo_k, max=hi_k),
            "f": Column("f", "float", min=lo_f, max=hi_f),
            "g": Column("g", "category", levels=LEVELS),
        }
    )
    k_values = st.sampled_from([lo_k, hi_k]) | st.integers(lo_k, hi_k)
    f_values = st.sampled_from([lo_f, hi_f]) | st.floats(lo_f, hi_f)
    row = st.fixed_dictionaries(
        {
            "k": st.none() | k_values,
            "f": st.none() | f_values,
            "g": st.none() | st.sampled_from(LEVELS),
        }
    )
    rows = draw(st.lists(row, max_size=max_rows))
    n_sites = draw(st.integers(1, 5))
    inner = sorted(draw(st.lists(st.integers(0, len(rows)), min_size=n_sites - 1,
                                 max_size=n_sites - 1)))
    return Study(
        schema,
        rows,
        [0, *inner, len(rows)],
        draw(st.sampled_from(FILTERS)),
        draw(st.integers(lo_k - 1, hi_k + 1)),
        draw(st.floats(lo_f, hi_f)),
    )


def pooled_result(analysis: Analysis, schema: Schema,
                  tables: Sequence[Table]) -> tuple[float | int | None, int]:
    """What the engines compute: add every site's statistics, then finish."""
    parts = [local_statistics(analysis, schema, table) for table in tables]
    assert all(len(p) == WIDTH[analysis.kind] for p in parts)
    column = schema[analysis.column] if analysis.column else None
    return finish(analysis, column, add_statistics(parts))


# --------------------------------------------------------------------------- the main property


def check_count(study: Study, tables: list[Table]) -> None:
    selected = study.selected()
    value, n = pooled_result(Analysis("n", "count", None, study.where), study.schema, tables)
    assert value == n == len(selected)
    for name in ("k", "f", "g"):
        present = [r for r in selected if r[name] is not None]
        value, n = pooled_result(Analysis("n", "count", name, study.where), study.schema, tables)
        assert value == n == len(present)
        assert type(value) is int


def check_int_column(study: Study, tables: list[Table]) -> None:
    values = [r["k"] for r in study.selected() if r["k"] is not None]
    x = np.array(values, dtype=np.int64)
    n_true = len(values)

    def run(kind: str) -> tuple[float | int | None, int]:
        value, n = pooled_result(Analysis(kind, kind, "k", study.where), study.schema, tables)
        assert n == n_true
        return value, n

    total, _ = run("sum")
    assert type(total) is int and total == int(np.sum(x)) == sum(values)  # type: ignore[arg-type]
    mean, _ = run("mean")
    if n_true == 0:
        assert mean is None
    else:
        # sums of these ints are exact in float64, so numpy's mean is correctly rounded too
        assert mean == float(np.mean(x))
    variance, _ = run("variance")
    std, _ = run("std")
    if n_true < 2:
        assert variance is None and std is None
        return
    assert variance == pytest.approx(float(np.var(x, ddof=1)), rel=1e-12, abs=0)
    assert variance == float(pystats.variance(values))  # exact rational, correctly rounded
    assert std == pytest.approx(float(np.std(x, ddof=1)), rel=1e-12, abs=0)
    if len(set(values)) == 1:
        assert variance == 0.0 and std == 0.0


def check_float_column(study: Study, tables: list[Table]) -> None:
    """Float columns: 1e-9 relative, plus the rounding floats allow given the data's scale.

    The second term is the condition number of each result times a small multiple of eps (a
    sum near zero of large values cannot be known to 1e-9 of itself, by numpy either); for
    data spread over their range it is far below 1e-9 of the result.
    """
    values = [r["f"] for r in study.selected() if r["f"] is not None]
    x = np.array(values, dtype=np.float64)
    n_true = len(values)
    c = study.schema["f"].center
    scale = float(np.sum(np.abs(x)) + np.sum(np.abs(x - c)))
    q = float(np.sum((x - c) ** 2))

    def run(kind: str) -> float | None:
        value, n = pooled_result(Analysis(kind, kind, "f", study.where), study.schema, tables)
        assert n == n_true
        assert value is None or type(value) is float
        return value  # type: ignore[return-value]

    total = run("sum")
    truth = float(np.sum(x))
    assert total is not None
    assert abs(total - truth) <= 1e-9 * abs(truth) + 64 * EPS * scale
    mean = run("mean")
    if n_true == 0:
        assert mean is None and total == 0.0
    else:
        truth = float(np.mean(x))
        assert mean is not None
        assert abs(mean - truth) <= 1e-9 * abs(truth) + 64 * EPS * scale / n_true
    variance, std = run("variance"), run("std")
    if n_true < 2:
        assert variance is None and std is None
        return
    assert variance is not None and std is not None
    truth = float(np.var(x, ddof=1))
    # ours: rounding of each centred value and site sum; numpy: rounding of its mean
    slack = 64 * EPS * math.sqrt(q * truth / (n_true - 1)) + 64 * EPS**2 * q / (n_true - 1)
    slack += (16 * EPS * float(np.max(np.abs(x)))) ** 2
    assert variance >= 0
    assert abs(variance - truth) <= 1e-9 * truth + slack
    truth_std = float(np.std(x, ddof=1))
    assert abs(std - truth_std) <= 1e-9 * truth_std + math.sqrt(slack)


@given(study=studies())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pooled_statistics_match_numpy(study: Study) -> None:
    tables = study.tables()
    assert sum(t.n_rows for t in tables) == len(study.rows)
    check_count(study, tables)
    check_int_column(study, tables)
    check_float_column(study, tables)


@given(study=studies(max_rows=12))
@settings(max_examples=60, deadline=None)
def test_splitting_does_not_change_int_results(study: Study) -> None:
    """For int columns the result is the same exact value however the rows are split."""
    one_site = [make_table(study.schema, study.rows)]
    tables = study.tables()
    for kind in KINDS:
        analysis = Analysis(kind, kind, "k", study.where)
        assert pooled_result(analysis, study.schema, tables) == pooled_result(
            analysis, study.schema, one_site)


# --------------------------------------------------------------------------- edge cases

SCHEMA = Schema(
    {
        "age": Column("age", "int", min=18, max=95),
        "neg": Column("neg", "int", min=-7, max=-2),
        "bmi": Column("bmi", "float", min=15.0, max=60.0),
        "arm": Column("arm", "category", levels=("a", "b")),
    }
)


def table(**columns: list[object]) -> Table:
    n = len(next(iter(columns.values())))
    full = {name: columns.get(name, [None] * n) for name in SCHEMA.names()}
    return Table.from_columns(SCHEMA, full)


@pytest.mark.parametrize("column", ["age", "neg", "bmi"])
def test_empty_cohort(column: str) -> None:
    tables = [table(age=[20, 30], neg=[-3, -4], bmi=[20.0, 30.0], arm=["a", "a"]),
              table(age=[40], neg=[-5], bmi=[25.0], arm=[None])]
    where = "arm == 'b'"
    results = {k: pooled_result(Analysis(k, k, column, where), SCHEMA, tables) for k in KINDS}
    assert results["count"] == (0, 0)
    assert results["sum"] == (0, 0) and type(results["sum"][0]) is (
        int if column != "bmi" else float)
    assert results["mean"] == (None, 0)
    assert results["variance"] == (None, 0) and results["std"] == (None, 0)


def test_all_values_missing_is_an_empty_cohort() -> None:
    tables = [table(age=[None, None], arm=["a", "b"])]
    assert pooled_result(Analysis("m", "mean", "age"), SCHEMA, tables) == (None, 0)
    assert pooled_result(Analysis("n", "count"), SCHEMA, tables) == (2, 2)
    assert pooled_result(Analysis("n", "count", "age"), SCHEMA, tables) == (0, 0)


@pytest.mark.parametrize(("column", "value"), [("age", 95), ("neg", -7), ("bmi", 59.5)])
def test_single_row_has_no_variance(column: str, value: object) -> None:
    tables = [table(**{column: [value]}), table(**{column: []})]
    assert pooled_result(Analysis("m", "mean", column), SCHEMA, tables) == (value, 1)
    assert pooled_result(Analysis("v", "variance", column), SCHEMA, tables) == (None, 1)
    assert pooled_result(Analysis("s", "std", column), SCHEMA, tables) == (None, 1)


def test_site_with_zero_rows() -> None:
    empty = table(age=[])
    assert empty.n_rows == 0
    for kind in KINDS:
        for column in ("age", "bmi"):
            stats = local_statistics(Analysis(kind, kind, column), SCHEMA, empty)
            assert stats == (0, 0, 0)[: WIDTH[kind]]
    full = table(age=[18, 95, 40], bmi=[15.0, 60.0, None])
    for kind in KINDS:
        analysis = Analysis(kind, kind, "age")
        assert pooled_result(analysis, SCHEMA, [empty, full, empty]) == pooled_result(
            analysis, SCHEMA, [full])
    assert pooled_result(Analysis("v", "variance", "age"), SCHEMA, [empty]) == (None, 0)


@given(
    bounds=st.sampled_from([(18, 95), (-7, -2), (0, 0), (-(2**52), 2**52), (2**52 - 5, 2**52)]),
    data=st.data(),
)
@settings(max_examples=50, deadline=None)
def test_equal_int_values_have_exactly_zero_variance(bounds: tuple[int, int],
                                                     data: st.DataObject) -> None:
    schema = Schema({"x": Column("x", "int", min=bounds[0], max=bounds[1])})
    value = data.draw(st.sampled_from(bounds) | st.integers(*bounds))
    sizes = data.draw(st.lists(st.integers(0, 6), min_size=1, max_size=5).filter(
        lambda s: sum(s) >= 2))
    tables = [Table.from_columns(schema, {"x": [value] * size}) for size in sizes]
    for kind in ("variance", "std"):
        result = pooled_result(Analysis(kind, kind, "x"), schema, tables)
        assert result == (0.0, sum(sizes))
    mean, _ = pooled_result(Analysis("m", "mean", "x"), schema, tables)
    assert mean == float(value)


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_int_columns_at_the_largest_bounds_are_exact(data: st.DataObject) -> None:
    """Values near 2**52, where float64 numpy is no longer exact: Python integers are the oracle."""
    lo, hi = data.draw(st.sampled_from([(-(2**52), 2**52), (2**52 - 1000, 2**52),
                                        (-(2**52), -(2**52) + 3), (-(2**52), 0)]))
    schema = Schema({"x": Column("x", "int", min=lo, max=hi)})
    value = st.sampled_from([lo, hi]) | st.integers(lo, hi)
    sites = data.draw(st.lists(st.lists(value, max_size=8), min_size=1, max_size=5))
    pooled = [v for site in sites for v in site]
    tables = [Table.from_columns(schema, {"x": site}) for site in sites]
    n = len(pooled)
    assert pooled_result(Analysis("s", "sum", "x"), schema, tables) == (sum(pooled), n)
    mean, _ = pooled_result(Analysis("m", "mean", "x"), schema, tables)
    assert mean == (float(Fraction(sum(pooled), n)) if n else None)
    variance, _ = pooled_result(Analysis("v", "variance", "x"), schema, tables)
    std, _ = pooled_result(Analysis("d", "std", "x"), schema, tables)
    if n < 2:
        assert variance is None and std is None
    else:
        exact = Fraction(n * sum(v * v for v in pooled) - sum(pooled) ** 2, n * (n - 1))
        assert variance == float(exact) == float(pystats.variance(pooled))
        assert std == pytest.approx(math.sqrt(exact), rel=1e-15)


def test_float_variance_far_from_the_centre() -> None:
    """Data bunched near one bound, spread tiny relative to |mean - centre|.

    Found by this test: Q was rounded to a float at each site (M2 + S**2/n), losing about
    eps * n * (mean - c)**2, which here is larger than the whole sum of squared deviations;
    the pooled variance came out 5.8e-05 relative off (and 100% off for a spread of 1e-2).
    """
    schema = Schema({"x": Column("x", "float", min=0.0, max=1e6)})
    rng = np.random.default_rng(7)
    for spread in (1e-2, 1.0, 100.0):
        x = 1e6 - rng.random(3000) * spread
        tables = [Table.from_columns(schema, {"x": part}) for part in np.array_split(x, 3)]
        variance, n = pooled_result(Analysis("v", "variance", "x"), schema, tables)
        assert n == 3000
        assert variance == pytest.approx(float(np.var(x, ddof=1)), rel=1e-9)


# --------------------------------------------------------------------------- local statistics


def test_local_statistics_are_centred_sums() -> None:
    rows = table(age=[18, 95, None, 60, 40], neg=[-7, -2, -3, None, -2],
                 bmi=[15.0, 60.0, 33.3, None, 21.5], arm=["a", "b", "a", "a", None])
    assert SCHEMA["age"].center == 56 and SCHEMA["neg"].center == -5  # floor of the midpoint
    # "arm != 'b'" keeps rows 1, 3 and 4 (row 5's arm is missing: unknown, left out)
    for column, values in (("age", [18, 60]), ("neg", [-7, -3])):
        c = int(SCHEMA[column].center)
        stats = local_statistics(Analysis("v", "variance", column, "arm != 'b'"), SCHEMA, rows)
        assert stats == (2, sum(v - c for v in values), sum((v - c) ** 2 for v in values))
        assert all(type(s) is int for s in stats)  # Python ints, ready for exact encodings
    n, s, q = local_statistics(Analysis("v", "variance", "bmi"), SCHEMA, rows)
    centred = np.array([15.0, 60.0, 33.3, 21.5]) - 37.5
    assert n == 4
    assert s == pytest.approx(float(np.sum(centred)), rel=1e-15, abs=1e-13)
    assert float(q) == pytest.approx(float(np.sum(centred**2)), rel=1e-14)
    assert local_statistics(Analysis("m", "mean", "bmi"), SCHEMA, rows) == (4, s)
    assert local_statistics(Analysis("n", "count", "arm"), SCHEMA, rows) == (4,)
    assert local_statistics(Analysis("n", "count", None, "age > 50"), SCHEMA, rows) == (2,)


def test_layout_of() -> None:
    assert layout_of(Analysis("n", "count"), SCHEMA) == StatLayout(1, True, 1.0)
    assert layout_of(Analysis("n", "count", "bmi"), SCHEMA) == StatLayout(1, True, 1.0)
    assert layout_of(Analysis("s", "sum", "age"), SCHEMA) == StatLayout(2, True, 39.0)
    assert layout_of(Analysis("v", "variance", "neg"), SCHEMA) == StatLayout(3, True, 3.0)
    assert layout_of(Analysis("d", "std", "bmi"), SCHEMA) == StatLayout(3, False, 22.5)
    assert StatLayout(3, True, 3.0).bounds() == (MAX_ROWS_PER_SITE, 3 * MAX_ROWS_PER_SITE,
                                                 9 * MAX_ROWS_PER_SITE)
    assert StatLayout(2, False, 0.5).bounds(10) == (10, 5.0)


# --------------------------------------------------------------------------- add and finish


def test_add_statistics_is_exact() -> None:
    parts = [(1, 0.1, 0.01), (2, 0.2, Fraction(1, 3)), (0, 0.0, 0.0)]
    assert add_statistics(parts) == (
        Fraction(3), Fraction(0.1) + Fraction(0.2), Fraction(0.01) + Fraction(1, 3))
    assert all(type(t) is Fraction for t in add_statistics(parts))
    assert add_statistics([(5,)]) == (Fraction(5),)


def test_finish_from_totals() -> None:
    age, bmi = SCHEMA["age"], SCHEMA["bmi"]
    # rows 18, 95, 40 with centre 56: S = -38 + 39 - 16 = -15, Q = 1444 + 1521 + 256 = 3221
    totals = (3, -15, 3221)
    assert finish(Analysis("n", "count"), None, totals[:1]) == (3, 3)
    assert finish(Analysis("s", "sum", "age"), age, totals[:2]) == (153, 3)
    assert finish(Analysis("m", "mean", "age"), age, totals[:2]) == (51.0, 3)
    assert finish(Analysis("v", "variance", "age"), age, totals) == (
        float(pystats.variance([18, 95, 40])), 3)
    assert finish(Analysis("d", "std", "age"), age, totals)[0] == pytest.approx(
        float(np.std([18, 95, 40], ddof=1)), rel=1e-15)
    # a total n that CKKS decoded slightly off an integer is rounded
    assert finish(Analysis("n", "count"), None, (Fraction(29999, 10000),)) == (3, 3)
    assert finish(Analysis("s", "sum", "bmi"), bmi, (2, Fraction(-15, 2))) == (67.5, 2)


def test_finish_clamps_a_negative_variance_from_noise() -> None:
    # CKKS noise can make Q - S**2/n slightly negative; the variance must not be.
    age = SCHEMA["age"]
    assert finish(Analysis("v", "variance", "age"), age, (4, 2, Fraction(99, 100))) == (0.0, 4)
    assert finish(Analysis("d", "std", "age"), age, (4, 2, Fraction(99, 100))) == (0.0, 4)


# --------------------------------------------------------------------------- exact_int_sum


@given(
    values=st.lists(st.integers(-(2**63) + 1, 2**63 - 1), max_size=60)
    | st.lists(st.integers(-(2**53), 2**53), max_size=60)
    | st.lists(st.integers(-(2**31), 2**31), max_size=60)
    | st.lists(st.integers(-1000, 1000), max_size=60),
    power=st.sampled_from([1, 2, 3]),
)
@settings(max_examples=100, deadline=None)
def test_exact_int_sum_matches_python_ints(values: list[int], power: int) -> None:
    result = exact_int_sum(np.array(values, dtype=np.int64), power)
    assert type(result) is int
    assert result == sum(v**power for v in values)


@pytest.mark.parametrize(
    "values",
    [
        [2**52] * 5000,
        [-(2**52)] * 5000,
        [2**52 - 1, -(2**52) + 3, 2**52] * 2000,
        list(range(2**52 - 3000, 2**52)),
        [2**31] * 3000,  # squares exactly 2**62: the pure-Python path
        [2**31 - 1] * 3000,  # squares just below 2**62: chunks of one
        [3_037_000_499] * 100,  # largest int whose square fits in int64
        [-(2**63)],
        [-(2**63), 2**63 - 1, 5],
    ],
)
def test_exact_int_sum_near_the_limits(values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    for power in (1, 2):
        assert exact_int_sum(array, power) == sum(v**power for v in values)


def test_exact_int_sum_of_nothing_and_zeros() -> None:
    assert exact_int_sum(np.array([], dtype=np.int64)) == 0
    assert exact_int_sum(np.zeros(10, dtype=np.int64), 2) == 0
