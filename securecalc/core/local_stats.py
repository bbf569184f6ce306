"""A site's local sufficient statistics as declarations, evaluated exactly.

A kind declares what it sums (:class:`LocalQuery`): row counts, sums of products of per-row
integers, and counts per cell of an integer key. Every per-row value is an exact integer
(:class:`Fixed`: an int column's value, or a float column's in fixed point;
:class:`Indicator`: 0/1), so every statistic is an exact integer whatever order the rows are
added in. That is what lets :func:`evaluate` (numpy over a :class:`Table`) and the SQL that
:mod:`securecalc.sources.pushdown` compiles from the same declaration give identical results.

Exactness rule of float columns: with ``F`` the column's fraction bits
(:func:`fraction_bits`), a value ``x`` counts as the integer ``floor(x * 2**F + 0.5)``
computed in IEEE double arithmetic: the product by a power of two is exact and the addition
correctly rounded, so NumPy, DuckDB and PostgreSQL compute the same integer from the same
double. Moments about a public centre follow from these raw sums in exact rational arithmetic
(:func:`centred_moments`), so centring loses nothing however far the data lie from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from securecalc.core.schema import Column
from securecalc.core.table import Table

#: most fraction bits of a float column's fixed-point value (2**F stays a finite double)
MAX_FRACTION_BITS = 1023
#: per-row fixed-point values stay within 2**VALUE_BITS in magnitude (int64, exact from
#: a double)
VALUE_BITS = 61


def fraction_bits(column: Column) -> int:
    """Fraction bits ``F`` of a float column: as many as keep ``|x| * 2**F`` within
    ``2**VALUE_BITS`` over the declared range, at most :data:`MAX_FRACTION_BITS`."""
    assert column.min is not None and column.max is not None
    peak = max(abs(Fraction(column.min)), abs(Fraction(column.max)))
    if peak == 0:
        return MAX_FRACTION_BITS
    exponent = math.ceil(math.log2(peak))
    while Fraction(2) ** exponent < peak:  # log2 may round down
        exponent += 1
    return min(MAX_FRACTION_BITS, VALUE_BITS - exponent)


# --------------------------------------------------------------------------- per-row values


@dataclass(frozen=True)
class Fixed:
    """A numeric column as an exact integer per row: ``x`` (int column) or
    ``floor(x * 2**bits + 0.5)`` (float column); ``center`` is the public centre the
    kinds' moments are taken about (applied exactly by :func:`centred_moments`)."""

    column: str
    bits: int
    integral: bool
    center: Fraction
    #: largest |value| a row may give
    bound: int

    @staticmethod
    def of(column: Column) -> Fixed:
        assert column.min is not None and column.max is not None
        peak = max(abs(Fraction(column.min)), abs(Fraction(column.max)))
        center = Fraction(column.center)
        if column.type == "int":
            return Fixed(column.name, 0, True, center, math.ceil(peak))
        bits = fraction_bits(column)
        return Fixed(column.name, bits, False, center, math.ceil(peak * Fraction(2) ** bits) + 1)

    @property
    def scale_bits(self) -> int:
        return self.bits


@dataclass(frozen=True)
class Indicator:
    """1 where ``column`` holds ``value`` (a level code, or 0/1 of an int column), else 0."""

    column: str
    value: int
    bound: int = 1
    scale_bits: int = 0
    center: Fraction = Fraction(0)


Term = Fixed | Indicator


@dataclass(frozen=True)
class Equals:
    """A row condition: ``column`` holds (or, negated, does not hold) ``value``."""

    column: str
    value: int
    negated: bool = False


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Code:
    """An int or category column's stored value minus ``offset``."""

    column: str
    offset: int = 0


@dataclass(frozen=True)
class EdgeBin:
    """Histogram bin of ``edges`` (``numpy.histogram``'s: each bin closed on the left, the
    last also on the right); -1 below the first edge, ``len(edges) - 1`` above the last."""

    column: str
    edges: tuple[float, ...]


@dataclass(frozen=True)
class Below:
    """How many of ``points`` lie strictly below the value (``searchsorted(side="left")``)."""

    column: str
    points: tuple[float, ...]


@dataclass(frozen=True)
class GridIndex:
    """A value rounded up to the grid ``lo + i * step`` (``i < points``), clipped to it;
    float values within ``tolerance`` steps above a point count as on it."""

    column: str
    lo: float
    step: float
    points: int
    integral: bool
    tolerance: float


@dataclass(frozen=True)
class Cell:
    """``major * minor_size + minor``: one cell of a two-way table."""

    major: Key
    minor: Key
    minor_size: int


Key = Code | EdgeBin | Below | GridIndex | Cell


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Count:
    """Rows kept (and satisfying ``when``)."""

    when: tuple[Equals, ...] = ()


@dataclass(frozen=True)
class Sum:
    """Sum over kept rows of the product of one or two terms: an exact integer, read as
    ``total / 2**(sum of the terms' bits)``."""

    terms: tuple[Term, ...]
    when: tuple[Equals, ...] = ()

    @property
    def scale_bits(self) -> int:
        return sum(t.scale_bits for t in self.terms)


@dataclass(frozen=True)
class Bins:
    """Rows kept per key value in ``[0, size)`` (others are dropped): a sparse histogram."""

    key: Key
    size: int
    when: tuple[Equals, ...] = ()


Statistic = Count | Sum | Bins


@dataclass(frozen=True)
class Histogram:
    """Sparse counts per key: ``keys`` ascending, ``counts`` positive, both int64."""

    keys: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum()) if self.counts.size else 0

    def dense(self, size: int) -> tuple[int, ...]:
        out = np.zeros(size, np.int64)
        out[self.keys] = self.counts
        return tuple(int(v) for v in out)

    def at_or_below(self, points: Sequence[int]) -> list[int]:
        """``#(values <= s)`` for each ``s`` in ``points`` (the order-statistic search's
        counting function, without the sorted values)."""
        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        found = np.searchsorted(self.keys, np.asarray(points, np.int64), side="right")
        return [int(cumulative[i]) for i in found]

    def sorted_values(self) -> np.ndarray:
        """The sorted int64 values the histogram counts (memory grows with the count)."""
        return np.repeat(self.keys, self.counts)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Histogram) and np.array_equal(self.keys, other.keys)
                and np.array_equal(self.counts, other.counts))

    # unhashable (typeshed types object.__hash__ as a method, hence the ignore)
    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class LocalQuery:
    """What a kind sums on one site's rows: the rows the study filter keeps with every
    ``present`` column present, then each statistic over them."""

    present: tuple[str, ...]
    statistics: tuple[Statistic, ...] = field(default_factory=tuple)


Value = int | Fraction | Histogram


def centred_moments(terms: Sequence[Term], raw: Sequence[Value]) -> tuple[int | Fraction, ...]:
    """``n, S_j, C_jk`` about the terms' centres from the raw ``n, R_j, R_jk`` of
    :func:`moment_statistics` (exact: ``S_j = R_j - n c_j``, ``C_jk = R_jk - c_k R_j -
    c_j R_k + n c_j c_k``); ints where every part is integral."""
    p = len(terms)
    n = raw[0]
    assert isinstance(n, int)
    sums = [_number(v) for v in raw[1:1 + p]]
    centres = [t.center for t in terms]
    out: list[int | Fraction] = [n]
    out += [_integral(r - n * c) for r, c in zip(sums, centres, strict=True)]
    for (j, k), r in zip(_triangle(p), raw[1 + p:], strict=True):
        cj, ck = centres[j], centres[k]
        out.append(_integral(_number(r) - ck * sums[j] - cj * sums[k] + n * cj * ck))
    return tuple(out)


def moment_statistics(terms: Sequence[Term],
                      when: tuple[Equals, ...] = ()) -> tuple[Statistic, ...]:
    """The raw ``n, R_j = sum t_j, R_jk = sum t_j t_k (j <= k)`` of the terms."""
    return (Count(when), *(Sum((t,), when) for t in terms),
            *(Sum((terms[j], terms[k]), when) for j, k in _triangle(len(terms))))


def _triangle(p: int) -> list[tuple[int, int]]:
    return [(j, k) for j in range(p) for k in range(j, p)]


def _number(value: Value) -> Fraction:
    assert not isinstance(value, Histogram)
    return Fraction(value)


def _integral(value: Fraction) -> int | Fraction:
    return int(value) if value.denominator == 1 else value


def scaled(total: int, bits: int) -> int | Fraction:
    """``total / 2**bits``: an int when ``bits`` is 0."""
    return total if bits == 0 else Fraction(total) / Fraction(2) ** bits


# --------------------------------------------------------------------------- numpy


def term_values(term: Term, table: Table, rows: np.ndarray) -> np.ndarray:
    """The term's int64 value on ``rows`` (see :class:`Fixed`)."""
    raw = table.column(term.column).values[rows]
    if isinstance(term, Indicator):
        hit: np.ndarray = raw == term.value
        return hit.astype(np.int64)
    if term.integral:
        out: np.ndarray = raw.astype(np.int64)
        return out
    x = raw.astype(np.float64)
    fixed: np.ndarray = np.floor(x * (2.0 ** term.bits) + 0.5).astype(np.int64)
    return fixed


def key_values(key: Key, table: Table, rows: np.ndarray) -> np.ndarray:
    """The key's int64 value on ``rows``."""
    if isinstance(key, Cell):
        cell: np.ndarray = (key_values(key.major, table, rows) * np.int64(key.minor_size)
                            + key_values(key.minor, table, rows))
        return cell
    raw = table.column(key.column).values[rows]
    idx: np.ndarray
    if isinstance(key, Code):
        idx = raw.astype(np.int64) - np.int64(key.offset)
        return idx
    if isinstance(key, EdgeBin):
        edges = np.asarray(key.edges, np.float64)
        x = raw.astype(np.float64)
        idx = (np.searchsorted(edges, x, side="right") - 1).astype(np.int64)
        idx[x == edges[-1]] = len(edges) - 2
        return idx
    if isinstance(key, Below):
        idx = np.searchsorted(np.asarray(key.points, np.float64), raw.astype(np.float64),
                              side="left").astype(np.int64)
        return idx
    if key.integral:
        step = int(key.step)
        idx = -((-(raw.astype(np.int64) - np.int64(int(key.lo)))) // step)
    else:
        q = (raw.astype(np.float64) - key.lo) / key.step
        idx = np.ceil(q - key.tolerance).astype(np.int64)
    clipped: np.ndarray = np.clip(idx, 0, key.points - 1)
    return clipped


_LIMB = 21


def int_dot(a: np.ndarray, b: np.ndarray) -> int:
    """Exact ``sum(a * b)`` of int64 arrays as a Python int."""
    if a.size == 0:
        return 0
    peak = int(np.max(np.abs(a))) * int(np.max(np.abs(b)))
    if peak == 0:
        return 0
    if peak >= 2**62:
        return sum(int(x) * int(y) for x, y in zip(a.tolist(), b.tolist(), strict=True))
    chunk = max(1, (2**62) // peak)
    total = 0
    for start in range(0, a.size, chunk):
        total += int(np.dot(a[start:start + chunk], b[start:start + chunk]))
    return total


def exact_sum(values: np.ndarray) -> int:
    """Exact ``sum(values)`` of an int64 array, in int64 pieces that cannot overflow (21-bit
    limbs when the values are large)."""
    if values.size == 0:
        return 0
    peak = int(np.max(np.abs(values)))
    if peak >= 2**40:
        return sum(exact_sum(limb) << (_LIMB * i) for i, limb in enumerate(_limbs(values)))
    if peak == 0:
        return 0
    chunk = max(1, (2**62) // peak)
    return sum(int(np.sum(values[i:i + chunk], dtype=np.int64))
               for i in range(0, values.size, chunk))


def _limbs(values: np.ndarray) -> list[np.ndarray]:
    """``values = sum(limb_i << 21 i)``: two non-negative 21-bit limbs and a signed top one."""
    mask = np.int64(2**_LIMB - 1)
    return [values & mask, (values >> _LIMB) & mask, values >> (2 * _LIMB)]


#: rows per block of :func:`exact_dot`: a block's sum of 21-bit limb products stays below
#: 2**53, so float64 arithmetic on it is exact whatever order BLAS adds in
_BLOCK = 2**(53 - 2 * _LIMB - 1)


def exact_dot(a: np.ndarray, b: np.ndarray) -> int:
    """Exact ``sum(a * b)`` of int64 arrays: directly in int64 chunks when the products are
    small, else by 21-bit limbs whose products are summed exactly in float64 blocks."""
    if a.size == 0:
        return 0
    peak = int(np.max(np.abs(a))) * int(np.max(np.abs(b)))
    if peak < 2**40:
        return int_dot(a, b)
    pad = -a.size % _BLOCK
    limbs_a = np.stack([np.pad(x, (0, pad)) for x in _limbs(a)], axis=-1).astype(np.float64)
    limbs_b = np.stack([np.pad(x, (0, pad)) for x in _limbs(b)], axis=-1).astype(np.float64)
    blocks = limbs_a.shape[0] // _BLOCK
    sums = np.matmul(limbs_a.reshape(blocks, _BLOCK, 3).transpose(0, 2, 1),
                     limbs_b.reshape(blocks, _BLOCK, 3))  # (blocks, 3, 3), exact integers
    totals = [exact_sum(sums[:, i, j].astype(np.int64)) for i in range(3) for j in range(3)]
    return sum(t << (_LIMB * (i + j))
               for t, (i, j) in zip(totals, [(i, j) for i in range(3) for j in range(3)],
                                    strict=True))


class _Rows:
    """One query's kept rows, with each condition's rows and each term's values computed
    once for all its statistics."""

    def __init__(self, table: Table, keep: np.ndarray):
        self.table = table
        self.keep = keep
        self._rows: dict[tuple[Equals, ...], np.ndarray] = {(): keep}
        self._terms: dict[tuple[Term, tuple[Equals, ...]], np.ndarray] = {}

    def rows(self, when: tuple[Equals, ...]) -> np.ndarray:
        if when not in self._rows:
            rows = self.keep
            for cond in when:
                hit = self.table.column(cond.column).values == cond.value
                rows = rows & (~hit if cond.negated else hit)
            self._rows[when] = rows
        return self._rows[when]

    def term(self, term: Term, when: tuple[Equals, ...]) -> np.ndarray:
        if (term, when) not in self._terms:
            self._terms[term, when] = term_values(term, self.table, self.rows(when))
        return self._terms[term, when]


def evaluate_statistic(statistic: Statistic, table: Table, keep: np.ndarray,
                       rows: _Rows | None = None) -> Value:
    """One statistic on the rows ``keep`` (``rows``: values shared with other statistics)."""
    rows = rows or _Rows(table, keep)
    if isinstance(statistic, Count):
        return int(np.count_nonzero(rows.rows(statistic.when)))
    if isinstance(statistic, Sum):
        values = [rows.term(t, statistic.when) for t in statistic.terms]
        if len(values) == 1:
            total = exact_sum(values[0])
        elif len(values) == 2:
            total = exact_dot(values[0], values[1])
        else:
            raise ValueError("a Sum multiplies one or two terms")
        return scaled(total, statistic.scale_bits)
    keys = key_values(statistic.key, table, rows.rows(statistic.when))
    keys = keys[(keys >= 0) & (keys < statistic.size)]
    found, counts = np.unique(keys, return_counts=True)
    return Histogram(found.astype(np.int64), counts.astype(np.int64))


def kept_rows(query: LocalQuery, table: Table, mask: np.ndarray) -> np.ndarray:
    """``mask`` (the study filter) narrowed to rows with every ``present`` column present."""
    keep = mask.copy()
    for name in query.present:
        keep &= ~table.column(name).missing
    return keep


def evaluate(query: LocalQuery, table: Table, mask: np.ndarray) -> tuple[Value, ...]:
    """Every statistic of ``query`` on the rows of ``table`` that ``mask`` keeps."""
    keep = kept_rows(query, table, mask)
    rows = _Rows(table, keep)
    return tuple(evaluate_statistic(s, table, keep, rows) for s in query.statistics)


__all__ = ["Below", "Bins", "Cell", "Code", "Count", "EdgeBin", "Equals", "Fixed", "GridIndex",
           "Histogram", "Indicator", "Key", "LocalQuery", "Statistic", "Sum", "Term", "Value",
           "centred_moments", "evaluate", "exact_dot", "exact_sum", "fraction_bits",
           "key_values", "kept_rows", "moment_statistics", "scaled", "term_values"]
