"""The statistics algebra: exact integer sums whatever their size, exact centring, the
fixed-point rule, and the order statistics' histogram form."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from securecalc.core.local_stats import (
    Fixed,
    Histogram,
    LocalQuery,
    centred_moments,
    evaluate,
    exact_dot,
    exact_sum,
    fraction_bits,
    moment_statistics,
)
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table


def test_exact_dot_of_large_int64_values() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-2**61, 2**61, 5000, dtype=np.int64)
    b = rng.integers(-2**61, 2**61, 5000, dtype=np.int64)
    assert exact_dot(a, b) == sum(int(x) * int(y) for x, y in zip(a, b, strict=True))
    extremes = np.array([2**62 - 1, -(2**62), 2**61 + 12345, -1, 0, 2**21, -(2**42)] * 300,
                        dtype=np.int64)
    assert exact_dot(extremes, extremes[::-1].copy()) == sum(
        int(x) * int(y) for x, y in zip(extremes, extremes[::-1], strict=True))
    assert exact_sum(extremes) == sum(int(x) for x in extremes)
    small = rng.integers(-1000, 1000, 5000, dtype=np.int64)
    assert exact_dot(small, small) == sum(int(x) ** 2 for x in small)


def test_fixed_point_rule_and_bits() -> None:
    column = Column("x", "float", min=-1e6, max=1e6)
    assert fraction_bits(column) == 41  # 2**20 >= 1e6: 61 - 20
    assert fraction_bits(Column("u", "float", min=0.0, max=1.0)) == 61
    schema = Schema({"x": column})
    step = 2.0 ** -41
    values = [step / 2, -step / 2, 1.5 * step, 1e6, -1e6, 0.1]
    table = Table.from_columns(schema, {"x": values})
    term = Fixed.of(column)
    query = LocalQuery(("x",), moment_statistics([term]))
    n, s, q = evaluate(query, table, np.ones(len(values), bool))
    fixed = [int(np.floor(v * 2.0**41 + 0.5)) for v in values]
    assert fixed[:3] == [1, 0, 2]  # floor(y + 0.5): halves go up
    assert (n, s, q) == (6, Fraction(sum(fixed), 2**41), Fraction(sum(f * f for f in fixed),
                                                                  2**82))


def test_centring_is_exact_far_from_the_centre() -> None:
    column = Column("x", "float", min=0.0, max=1e6)
    schema = Schema({"x": column})
    values = [1000.0 + i * 2.0**-20 for i in range(7)]  # exactly representable in the grid
    table = Table.from_columns(schema, {"x": values})
    term = Fixed.of(column)
    raw = evaluate(LocalQuery(("x",), moment_statistics([term])), table, np.ones(7, bool))
    n, s, c = centred_moments([term], raw)
    centre = Fraction(column.center)
    assert s == sum(Fraction(v) - centre for v in values)
    assert c == sum((Fraction(v) - centre) ** 2 for v in values)


def test_histogram_answers_the_search_counts_like_sorted_values() -> None:
    values = np.sort(np.random.default_rng(5).integers(0, 50, 400))
    keys, counts = np.unique(values, return_counts=True)
    histogram = Histogram(keys.astype(np.int64), counts.astype(np.int64))
    points = [-1, 0, 3, 17, 49, 60]
    assert histogram.at_or_below(points) == [int(np.searchsorted(values, p, side="right"))
                                            for p in points]
    np.testing.assert_array_equal(histogram.sorted_values(), values)
    assert histogram.n == 400


def test_ckks_histogram_program_takes_either_form() -> None:
    from securecalc.core.kinds.order import HistogramProgram

    values = np.sort(np.random.default_rng(7).integers(0, 30, 200))
    keys, counts = np.unique(values, return_counts=True)
    program = HistogramProgram(30)
    state = program.initial_state()
    assert program.local(state, Histogram(keys, counts)) == program.local(state, values)
