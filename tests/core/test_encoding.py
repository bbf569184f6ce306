"""Engine encodings of sufficient statistics: MPC fixed point and bounds, CKKS normalisation.

The reference for every round trip is :func:`add_statistics` (exact rational sums of the
sites' statistics); no encryption or secret sharing is involved here.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecalc.core.analyses import Analysis
from securecalc.core.encoding import (
    FRACTION_BITS,
    ckks_decode,
    ckks_encode,
    mpc_bound,
    mpc_decode,
    mpc_encode,
    mpc_scale,
)
from securecalc.core.schema import Column, Schema
from securecalc.core.statistics import (
    MAX_ROWS_PER_SITE,
    StatLayout,
    add_statistics,
    finish,
    layout_of,
    local_statistics,
)
from securecalc.core.table import Table

pytestmark = pytest.mark.timeout(60)

EPS = float(np.finfo(np.float64).eps)
KINDS = ("count", "sum", "mean", "variance", "std")
ULP = Fraction(1, 2**FRACTION_BITS)
TERA = Fraction(1, 10**12)

INT_BOUNDS = [(18, 95), (-7, -2), (0, 0), (0, 1), (-(10**6), 10**6), (123, 10**6 + 7),
              (-(2**52), 2**52), (0, 2**52 - 1), (-(2**52) + 1, 2**52), (10**8, 3 * 10**8 + 1)]
FLOAT_BOUNDS = [(15.0, 60.0), (2.0, 12.0), (0.1, 0.7), (-1.5, 4.5), (0.0, 6.0), (-3.0, 0.0),
                (1e-300, 1e-299), (-1e6, 1e6 + 0.3), (5.5, 5.5), (0.0, 2.0**52)]


@st.composite
def column_data(draw: st.DrawFn, kind: str, *, max_rows: int = 60,
                bounds: Sequence[tuple[float, float]] | None = None
                ) -> tuple[Schema, list[list[object]]]:
    """A schema with one column ``x`` and 1-5 sites' values (None = missing), many at bounds."""
    if kind == "int":
        lo, hi = draw(st.sampled_from(bounds or INT_BOUNDS) | st.tuples(
            st.integers(-(10**6), 0), st.integers(0, 10**6)))
        inner = st.integers(int(lo), int(hi))
        edges = [int(lo), int(hi)]
    else:
        lo, hi = draw(st.sampled_from(bounds or FLOAT_BOUNDS) | st.tuples(
            st.floats(-1e6, 0.0), st.floats(0.0, 1e6)))
        inner = st.floats(lo, hi)
        edges = [lo, hi, float(np.nextafter(hi, lo)), float(np.nextafter(lo, hi))]
    schema = Schema({"x": Column("x", kind, min=lo, max=hi)})  # type: ignore[arg-type]
    values = st.none() | st.sampled_from(edges) | inner
    sites = draw(st.lists(st.lists(values, max_size=max_rows), min_size=1, max_size=5))
    return schema, sites


def site_tables(schema: Schema, sites: list[list[object]]) -> list[Table]:
    return [Table.from_columns(schema, {"x": values}) for values in sites]


def analyses() -> list[Analysis]:
    return [Analysis("n", "count"), Analysis("nx", "count", "x"),
            *[Analysis(k, k, "x") for k in KINDS[1:]]]


def add_floats(vectors: list[list[float]]) -> list[float]:
    """Slot-wise float sum in site order, as the compute node adds ciphertexts."""
    totals = [0.0] * len(vectors[0])
    for vector in vectors:
        totals = [t + v for t, v in zip(totals, vector, strict=True)]
    return totals


# --------------------------------------------------------------------------- MPC


def mpc_round_trip(layout: StatLayout, parts: list[tuple]) -> tuple[Fraction, ...]:
    encoded = [mpc_encode(layout, p) for p in parts]
    for e in encoded:
        assert all(type(v) is int for v in e)
    totals = [sum(e[i] for e in encoded) for i in range(layout.width)]
    decoded = mpc_decode(layout, totals)
    assert all(type(v) is Fraction for v in decoded)
    return decoded


@given(data=column_data("int"))
@settings(max_examples=100, deadline=None)
def test_mpc_round_trip_is_exact_for_int_columns(data: tuple[Schema, list[list[object]]]) -> None:
    schema, sites = data
    tables = site_tables(schema, sites)
    for analysis in analyses():
        layout = layout_of(analysis, schema)
        assert layout.integral and mpc_scale(layout) == 1
        parts = [local_statistics(analysis, schema, t) for t in tables]
        reference = add_statistics(parts)
        decoded = mpc_round_trip(layout, parts)
        assert decoded == reference
        column = schema["x"] if analysis.column else None
        assert finish(analysis, column, decoded) == finish(analysis, column, reference)


@given(data=column_data("float"))
@settings(max_examples=100, deadline=None)
def test_mpc_round_trip_for_float_columns(data: tuple[Schema, list[list[object]]]) -> None:
    """n exactly; each float statistic to 2**-49 per site (rounding to the nearest 2**-48)."""
    schema, sites = data
    tables = site_tables(schema, sites)
    for analysis in analyses():
        layout = layout_of(analysis, schema)
        parts = [local_statistics(analysis, schema, t) for t in tables]
        reference = add_statistics(parts)
        decoded = mpc_round_trip(layout, parts)
        assert decoded[0] == reference[0]
        if analysis.kind == "count":
            assert decoded == reference
            continue
        assert not layout.integral and mpc_scale(layout) == 2**FRACTION_BITS
        for part in parts:  # one site: encoding rounds to the nearest multiple of 2**-48
            single = mpc_decode(layout, mpc_encode(layout, part))
            assert single[0] == part[0]
            for d, v in zip(single[1:], part[1:], strict=True):
                assert abs(d - Fraction(v)) <= ULP / 2
        for d, r in zip(decoded[1:], reference[1:], strict=True):
            assert abs(d - r) <= len(sites) * ULP / 2
        if len(sites) <= 2:
            assert all(abs(d - r) <= ULP for d, r in zip(decoded[1:], reference[1:], strict=True))


def test_mpc_encode_and_decode_by_hand() -> None:
    integral = StatLayout(3, True, 39.0)
    assert mpc_encode(integral, (3, -15, 3221)) == (3, -15, 3221)
    assert mpc_decode(integral, (3, -15, 3221)) == (3, -15, 3221)
    fixed = StatLayout(3, False, 22.5)
    assert mpc_encode(fixed, (2, 0.5, Fraction(1, 3))) == (
        2, 2**47, round(Fraction(2**FRACTION_BITS, 3)))
    assert mpc_encode(fixed, (1, -0.75, 2**-60)) == (1, -3 * 2**46, 0)
    assert mpc_decode(fixed, (2, 2**47, 3 * 2**48)) == (2, Fraction(1, 2), 3)
    assert mpc_encode(StatLayout(1, True, 1.0), (7,)) == (7,)


def encoded_within_bounds(schema: Schema, sites: list[list[object]]) -> None:
    for table in site_tables(schema, sites):
        n_rows = table.n_rows
        for analysis in analyses():
            layout = layout_of(analysis, schema)
            encoded = mpc_encode(layout, local_statistics(analysis, schema, table))
            default = mpc_bound(layout)
            assert all(abs(v) <= default for v in encoded)
            if n_rows:
                # the bound for max_rows rows must hold for a site of exactly that many rows
                bound = mpc_bound(layout, max_rows=n_rows)
                assert all(abs(v) <= bound for v in encoded), (analysis.kind, encoded, bound)


@given(data=column_data("int"))
@settings(max_examples=100, deadline=None)
def test_mpc_encodings_of_int_columns_within_bound(data: tuple[Schema, list[list[object]]]) -> None:
    encoded_within_bounds(*data)


@given(data=column_data("float", max_rows=20))
@settings(max_examples=60, deadline=None)
def test_mpc_encodings_of_float_columns_within_bound(
    data: tuple[Schema, list[list[object]]],
) -> None:
    encoded_within_bounds(*data)


@given(
    bounds=st.sampled_from(FLOAT_BOUNDS),
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    jitter=st.sampled_from([0.0, 1e-15, 1e-13, 1e-10]),
)
@settings(max_examples=100, deadline=None)
def test_mpc_float_bound_for_many_rows_near_the_bounds(
    bounds: tuple[float, float], n: int, seed: int, jitter: float
) -> None:
    """Found by this test: float statistics of rows at the bounds exceeded mpc_bound(n)."""
    lo, hi = bounds
    rng = np.random.default_rng(seed)
    near = np.where(rng.random(n) < 0.5, hi - rng.random(n) * jitter * (hi - lo),
                    lo + rng.random(n) * jitter * (hi - lo))
    encoded_within_bounds(Schema({"x": Column("x", "float", min=lo, max=hi)}),
                          [np.clip(near, lo, hi).tolist()])


@pytest.mark.parametrize("a", [2**52 - 1, 2**52 - 3, 10**15 + 7, 10**8 + 1, 123456789])
@pytest.mark.parametrize("rows", [1, 2, 3, 7, MAX_ROWS_PER_SITE])
def test_mpc_bound_of_large_int_columns_is_exact(a: int, rows: int) -> None:
    """Found by this test: the bound was computed in float64 and could round below rows * a**2.

    (A site of ``rows`` rows all at the bound has Q = rows * a**2 exactly.)
    """
    layout = StatLayout(3, True, float(a))
    assert float(a) == a
    assert mpc_bound(layout, rows) >= rows * a * a
    assert mpc_bound(layout, rows) <= rows * a * a + 1


@given(
    width=st.integers(1, 3),
    integral=st.booleans(),
    a=st.sampled_from([0.0, 0.5, 1.0, 22.5, 2.0**52]) | st.floats(0, 2.0**53),
    rows=st.integers(1, MAX_ROWS_PER_SITE),
)
@settings(max_examples=100, deadline=None)
def test_mpc_bound_is_a_tight_upper_bound(width: int, integral: bool, a: float,
                                          rows: int) -> None:
    layout = StatLayout(width, integral, a)
    # n (slot 0) is always an exact count; only the other float slots are fixed point
    exact = max(rows * Fraction(a) ** k * (mpc_scale(layout) if k else 1) for k in range(width))
    bound = mpc_bound(layout, rows)
    assert type(bound) is int
    assert exact <= bound <= exact * (1 + Fraction(1, 2**16)) + 2  # no more than a few ulps
    assert mpc_bound(layout) >= bound or rows == MAX_ROWS_PER_SITE


def test_mpc_bound_of_counts() -> None:
    layout = StatLayout(1, True, 1.0)
    assert MAX_ROWS_PER_SITE <= mpc_bound(layout) <= MAX_ROWS_PER_SITE + 1
    assert 5 <= mpc_bound(layout, 5) <= 6


# --------------------------------------------------------------------------- CKKS


def ckks_round_trip(layout: StatLayout, parts: list[tuple]) -> tuple[Fraction, ...]:
    vectors = [ckks_encode(layout, p) for p in parts]
    for vector in vectors:
        assert len(vector) == layout.width and all(type(v) is float for v in vector)
    decoded = ckks_decode(layout, add_floats(vectors))
    assert all(type(v) is Fraction for v in decoded)
    return decoded


@pytest.mark.parametrize("kind", ["int", "float"])
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_ckks_round_trip(kind: str, data: st.DataObject) -> None:
    """Integral statistics exactly after rounding; float ones to 1e-12 of the slot's scale.

    A float statistic k is carried as a float of magnitude at most n (normalised by A**k), so
    its error is relative to n * A**k, the largest value the slot could hold, not to itself
    (a sum that cancels to almost zero is not known to 1e-12 of itself).
    """
    bounds = [b for b in INT_BOUNDS if max(map(abs, b)) <= 10**8] if kind == "int" else None
    schema, sites = data.draw(column_data(kind, bounds=bounds))
    tables = site_tables(schema, sites)
    for analysis in analyses():
        layout = layout_of(analysis, schema)
        parts = [local_statistics(analysis, schema, t) for t in tables]
        reference = add_statistics(parts)
        decoded = ckks_round_trip(layout, parts)
        assert decoded[0] == reference[0]
        if layout.integral:
            assert decoded == reference
            continue
        n = reference[0]
        a = Fraction(layout.max_abs_value) or Fraction(1)
        for k in range(1, layout.width):
            # in Fractions: A**k may be far below the smallest float (bounds of 1e-300)
            tolerance = TERA * max(abs(reference[k]), n * a**k)
            assert abs(decoded[k] - reference[k]) <= tolerance
            if n:
                assert abs(decoded[k] - reference[k]) <= TERA * abs(reference[k]) + (
                    8 * len(sites) * Fraction(EPS) * n * a**k)
        column = schema["x"]
        if analysis.kind == "sum" or (n and analysis.kind == "mean"):
            got, _ = finish(analysis, column, decoded)
            want, _ = finish(analysis, column, reference)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12 * float(n * a + abs(
                Fraction(column.center)) * n))


def test_ckks_integral_statistics_beyond_float_precision() -> None:
    """Known limit: integral totals above 2**53 cannot survive a float slot exactly.

    CKKS noise (about 1e-9 of the slot's scale) is far larger anyway; the round trip stays
    accurate to float precision and n stays exact.
    """
    schema = Schema({"x": Column("x", "int", min=-(2**52), max=2**52)})
    sites = [[2**52, -(2**52) + 1, 12345], [2**52 - 1, 7]]
    tables = site_tables(schema, sites)
    analysis = Analysis("v", "variance", "x")
    layout = layout_of(analysis, schema)
    parts = [local_statistics(analysis, schema, t) for t in tables]
    reference = add_statistics(parts)
    decoded = ckks_round_trip(layout, parts)
    assert decoded[0] == reference[0] == 5
    for d, r in zip(decoded[1:], reference[1:], strict=True):
        assert d.denominator == 1
        assert abs(d - r) <= 4 * EPS * 5 * Fraction(2**52) ** 2


def site_slots_within_n(schema: Schema, sites: list[list[object]]) -> None:
    for table in site_tables(schema, sites):
        for analysis in analyses():
            layout = layout_of(analysis, schema)
            stats = local_statistics(analysis, schema, table)
            vector = ckks_encode(layout, stats)
            n = stats[0]
            assert vector[0] == n
            # |S| <= n*A and Q <= n*A**2 exactly; the float division may add an ulp or two
            assert all(abs(v) <= n * (1 + 4 * EPS) for v in vector), (vector, n)


@given(data=column_data("int"))
@settings(max_examples=60, deadline=None)
def test_ckks_slots_of_int_columns_are_at_most_n(data: tuple[Schema, list[list[object]]]) -> None:
    site_slots_within_n(*data)


@given(data=column_data("float"))
@settings(max_examples=60, deadline=None)
def test_ckks_slots_of_float_columns_are_at_most_n(
    data: tuple[Schema, list[list[object]]],
) -> None:
    site_slots_within_n(*data)


def test_ckks_encode_by_hand() -> None:
    layout = StatLayout(3, True, 10.0)
    assert ckks_encode(layout, (3, -15, 34)) == [3.0, -1.5, 0.34]
    # a column with min == max: nothing to normalise by
    flat = StatLayout(3, False, 0.0)
    assert ckks_encode(flat, (4, 0.0, 0.0)) == [4.0, 0.0, 0.0]
    assert ckks_decode(flat, [4.0, 0.0, 0.0]) == (4, 0, 0)
    with pytest.raises(ValueError):
        ckks_encode(layout, (3, -15))  # a statistic missing: never silently truncated


def test_ckks_decode_rounds_integral_statistics_only() -> None:
    noisy = [3.0000001, -1.49999999, 0.3400000001]
    assert ckks_decode(StatLayout(3, True, 10.0), noisy) == (3, -15, 34)
    n, s, q = ckks_decode(StatLayout(3, False, 10.0), noisy)
    assert n == 3  # n is always a count
    assert s == Fraction(-1.49999999) * 10 and q == Fraction(0.3400000001) * 100
    assert ckks_decode(StatLayout(1, True, 1.0), [41.6]) == (42,)
