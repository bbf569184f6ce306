"""Kinds' local statistics computed by the database: :class:`~securecalc.core.local_stats`
declarations compiled to aggregate SQL over the node's typed relation.

Every per-row value is an exact integer computed with the same IEEE double operations as
the NumPy path (``floor(x * 2**F + 0.5)`` for a float column), and every sum is taken over
integers (DuckDB HUGEINT, PostgreSQL numeric), splitting products into 31-bit limbs where
they could exceed 64 bits; so the values equal :func:`~securecalc.core.local_stats.evaluate`
on the same rows exactly. One scan answers every count and sum of a job's analyses, one
grouped query each histogram: the rows never leave the database, and the answer's size is
bounded by the statistics and the histograms' cells, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from securecalc.core.local_stats import (
    Below,
    Bins,
    Cell,
    Code,
    Count,
    EdgeBin,
    Equals,
    Histogram,
    Indicator,
    Key,
    LocalQuery,
    Sum,
    Term,
    Value,
    scaled,
)
from securecalc.core.table import Table
from securecalc.core.where import Predicate
from securecalc.sources.reader import SourceReader
from securecalc.sources.sql import Dialect, Sql, ident, join, param, sql
from securecalc.sources.typed import aggregate_select
from securecalc.sources.where_sql import where_sql

#: per-row products stay below 2**62 in magnitude (one BIGINT); else 31-bit limbs
_SINGLE_PRODUCT = 2**62
_LIMB = 31


def _int(value: Any) -> int:
    """An exact integer aggregate (DuckDB int / HUGEINT, PostgreSQL Decimal); NULL is 0."""
    if value is None:
        return 0
    if isinstance(value, Decimal):
        assert value == value.to_integral_value()
    return int(value)


def _double(dialect: Dialect) -> str:
    return "DOUBLE" if dialect == "duckdb" else "double precision"


def _flag(condition: Sql) -> Sql:
    return sql("(CASE WHEN ") + condition + sql(" THEN 1 ELSE 0 END)")


def term_sql(term: Term, dialect: Dialect) -> Sql:
    """The term's BIGINT value per row."""
    column = ident(term.column)
    if isinstance(term, Indicator):
        return _flag(column + sql(" = ") + param(term.value))
    if term.integral:
        return column
    double = _double(dialect)
    return (sql("CAST(floor(") + column + sql(" * CAST(") + param(2.0 ** term.bits)
            + sql(f" AS {double}) + CAST(0.5 AS {double})) AS BIGINT)"))


def key_sql(key: Key, dialect: Dialect) -> Sql:
    """The key's BIGINT value per row (see the key classes for their NumPy meaning)."""
    if isinstance(key, Cell):
        return (sql("((") + key_sql(key.major, dialect) + sql(") * ") + param(key.minor_size)
                + sql(" + (") + key_sql(key.minor, dialect) + sql("))"))
    column = ident(key.column)
    double = _double(dialect)

    def as_double(value: float) -> Sql:
        return sql("CAST(") + param(float(value)) + sql(f" AS {double})")

    if isinstance(key, Code):
        return column if key.offset == 0 else sql("(") + column + sql(" - ") + param(
            key.offset) + sql(")")
    if isinstance(key, EdgeBin):
        at_or_below = _thresholds(column, key.edges, dialect, strict=False)
        return (sql("(CASE WHEN ") + column + sql(" = ") + as_double(key.edges[-1])
                + sql(f" THEN {len(key.edges) - 2} ELSE ") + at_or_below + sql(" - 1 END)"))
    if isinstance(key, Below):
        return _thresholds(column, key.points, dialect, strict=True)
    if key.integral:
        step = int(key.step)
        shifted = sql("(") + column + sql(" - ") + param(int(key.lo)) + sql(")")
        divide = " // " if dialect == "duckdb" else " / "
        index = (sql("(CASE WHEN ") + shifted + sql(" <= 0 THEN 0 ELSE (") + shifted
                 + sql(f" + {step - 1}){divide}{step} END)"))
        return sql("LEAST(") + index + sql(f", {key.points - 1})")
    index = (sql("CAST(ceil((") + column + sql(" - ") + as_double(key.lo) + sql(") / ")
             + as_double(key.step) + sql(" - ") + as_double(key.tolerance)
             + sql(") AS BIGINT)"))
    return sql("GREATEST(0, LEAST(") + index + sql(f", {key.points - 1}))")


_LEAF = 8
#: what keeps the per-row values of the inner select computed once per row: PostgreSQL
#: would otherwise substitute them into every aggregate
_FENCE: dict[str, str] = {"postgres": " OFFSET 0"}
#: engines that share common expressions themselves and scan columnar data in parallel: one
#: inline query per analysis runs faster there than one shared scan
_INLINE = frozenset({"duckdb"})


def _thresholds(column: Sql, points: Sequence[float], dialect: Dialect, strict: bool) -> Sql:
    """How many of the sorted ``points`` lie at or below the value (strictly below when
    ``strict``), compared as doubles: PostgreSQL's ``width_bucket`` on one array parameter,
    elsewhere a binary search written as nested CASE (either way O(log points) per row)."""
    double = _double(dialect)
    value = sql("CAST(") + column + sql(f" AS {double})")
    values = [float(p) for p in points]
    if not values:
        return sql("0")
    if dialect == "postgres":
        if not strict:  # width_bucket counts the thresholds <= the operand
            return (sql("width_bucket(") + value + sql(", CAST(") + param(values)
                    + sql(f" AS {double}[]))"))
        negated = [-v for v in reversed(values)]  # #(p < x) = n - #(-p <= -x)
        return (sql(f"({len(values)} - width_bucket(-") + value + sql(", CAST(")
                + param(negated) + sql(f" AS {double}[])))"))

    def point(i: int) -> Sql:
        return sql("CAST(") + param(values[i]) + sql(f" AS {double})")

    below = " < " if strict else " <= "

    def search(lo: int, hi: int) -> Sql:
        """The count, given that exactly the points before ``lo`` qualify among those
        outside ``[lo, hi)``."""
        if hi - lo <= _LEAF:
            flags = [_flag(point(i) + sql(below) + value) for i in range(lo, hi)]
            return sql(f"({lo} + ") + join(" + ", flags) + sql(")")
        mid = (lo + hi) // 2
        stops = " <= " if strict else " < "  # the value does not pass points[mid]
        return (sql("(CASE WHEN ") + value + sql(stops) + point(mid) + sql(" THEN ")
                + search(lo, mid) + sql(" ELSE ") + search(mid, hi) + sql(" END)"))

    return search(0, len(values))


def _when(when: tuple[Equals, ...]) -> Sql | None:
    if not when:
        return None
    return join(" AND ", (sql("(") + ident(c.column) + sql(" <> " if c.negated else " = ")
                          + param(c.value) + sql(")") for c in when))


@dataclass(frozen=True)
class _Compiled:
    """The aggregates of one Count or Sum and how to read its value back."""

    aggregates: list[Sql]
    bits: int

    def value(self, results: Sequence[Any]) -> Value:
        if len(self.aggregates) == 1:
            total = _int(results[0])
        else:
            hh, hl, lh, ll = (_int(r) for r in results)
            total = (hh << (2 * _LIMB)) + ((hl + lh) << _LIMB) + ll
        return scaled(total, self.bits)


class _Scan:
    """The counts and sums of several queries in one pass over the typed relation.

    Shared: per-row values (terms, their limbs, row conditions) are computed once in an
    inner select of the rows some query keeps, and every statistic is an aggregate filtered
    by its query's condition. Inline (one query, for engines that share common expressions
    themselves): the expressions stand in the aggregates and the query's condition is the
    WHERE clause."""

    def __init__(self, dialect: Dialect, inline: bool):
        self.dialect = dialect
        self.inline = inline
        self.columns: dict[object, tuple[str, Sql]] = {}

    def column(self, key: object, expression: Sql) -> Sql:
        """The inner select's column for ``key`` (added on first use)."""
        if self.inline:
            return sql("(") + expression + sql(")")
        if key not in self.columns:
            self.columns[key] = (f"v{len(self.columns)}", expression)
        return sql(self.columns[key][0])

    def term(self, term: Term) -> Sql:
        return self.column(term, term_sql(term, self.dialect))

    def limbs(self, term: Term) -> tuple[Sql, Sql]:
        """(high, low) with ``term = high * 2**31 + low``, ``0 <= low < 2**31``."""
        value = term_sql(term, self.dialect)
        return (self.column(("hi", term), sql("(") + value + sql(f" >> {_LIMB})")),
                self.column(("lo", term), sql("(") + value + sql(f" & {2**_LIMB - 1})")))

    def condition(self, keep: Sql, key: object, when: tuple[Equals, ...]) -> Sql | None:
        parts = [] if self.inline else [self.column(("keep", key), keep)]
        parts += [self.column(c, sql("(") + ident(c.column)
                              + sql(" <> " if c.negated else " = ") + param(c.value)
                              + sql(")")) for c in when]
        return join(" AND ", parts) if parts else None

    def statistic(self, statistic: Count | Sum, keep: Sql, key: object) -> _Compiled:
        condition = self.condition(keep, key, statistic.when)
        where = Sql() if condition is None else (sql(" FILTER (WHERE ") + condition
                                                 + sql(")"))
        if isinstance(statistic, Count):
            return _Compiled([sql("count(*)") + where], 0)
        if len(statistic.terms) == 1:
            return _Compiled([sql("sum(") + self.term(statistic.terms[0]) + sql(")") + where],
                             statistic.scale_bits)
        a, b = statistic.terms
        if a.bound * b.bound < _SINGLE_PRODUCT:
            product = sql("sum(") + self.term(a) + sql(" * ") + self.term(b) + sql(")")
            return _Compiled([product + where], statistic.scale_bits)
        (a_hi, a_lo), (b_hi, b_lo) = self.limbs(a), self.limbs(b)
        parts = [sql("sum(") + x + sql(" * ") + y + sql(")") + where
                 for x, y in ((a_hi, b_hi), (a_hi, b_lo), (a_lo, b_hi), (a_lo, b_lo))]
        return _Compiled(parts, statistic.scale_bits)

    def inner(self) -> list[Sql]:
        return [expression + sql(f" AS {name}") for name, expression in self.columns.values()]


def kept(query: LocalQuery, predicate: Predicate) -> Sql:
    """The rows the filter keeps with every ``present`` column present."""
    parts = [sql("(") + where_sql(predicate) + sql(")")]
    parts += [ident(name) + sql(" IS NOT NULL") for name in query.present]
    return join(" AND ", parts)


def histogram_sql(reader: SourceReader, statistic: Bins, where: Sql) -> Sql:
    """``SELECT key, count(*) ... GROUP BY key`` over the typed relation."""
    key = key_sql(statistic.key, reader.relation.dialect)
    condition = _when(statistic.when)
    if condition is not None:
        where = where + sql(" AND ") + condition
    return aggregate_select(reader.relation, reader.catalogue,
                            [key + sql(" AS k"), sql("count(*)")], where) + sql(" GROUP BY 1")


def _scalars(reader: SourceReader, items: Sequence[tuple[LocalQuery, Predicate]],
             out: list[list[Value | None]], indices: Sequence[int]) -> None:
    """The counts and sums of ``items[i]`` for ``i`` in ``indices``, in one query."""
    dialect = reader.relation.dialect
    scan = _Scan(dialect, inline=dialect in _INLINE and len(indices) == 1)
    compiled: list[tuple[int, int, _Compiled]] = []
    keeps: dict[object, Sql] = {}
    for i in indices:
        query, predicate = items[i]
        keep = kept(query, predicate)
        for j, statistic in enumerate(query.statistics):
            if not isinstance(statistic, Bins):
                key = (query.present, predicate)
                keeps[key] = keep
                compiled.append((i, j, scan.statistic(statistic, keep, key)))
    if not compiled:
        return
    aggregates = [a for _, _, c in compiled for a in c.aggregates]
    any_kept = join(" OR ", (sql("(") + k + sql(")") for k in keeps.values()))
    if scan.inline:
        statement = aggregate_select(reader.relation, reader.catalogue, aggregates, any_kept)
    else:
        inner = aggregate_select(reader.relation, reader.catalogue, scan.inner(), any_kept)
        statement = (sql("SELECT ") + join(", ", aggregates) + sql(" FROM (") + inner
                     + sql(_FENCE.get(dialect, "") + ") AS s"))
    results = reader.rows(statement)[0]
    at = 0
    for i, j, c in compiled:
        out[i][j] = c.value(results[at:at + len(c.aggregates)])
        at += len(c.aggregates)


def pushdown_many(reader: SourceReader,
                  items: Sequence[tuple[LocalQuery, Predicate]]) -> list[tuple[Value, ...]]:
    """Every statistic of each ``(query, predicate)`` computed by the database: the counts
    and sums in one scan for all queries (on DuckDB one inline scan per query, which it runs
    faster), each histogram in one grouped query. Each result equals
    :func:`~securecalc.core.local_stats.evaluate` on the rows the predicate keeps."""
    out: list[list[Value | None]] = [[None] * len(q.statistics) for q, _ in items]
    if reader.relation.dialect in _INLINE:
        for i in range(len(items)):
            _scalars(reader, items, out, [i])
    else:
        _scalars(reader, items, out, range(len(items)))
    for i, (query, predicate) in enumerate(items):
        for j, statistic in enumerate(query.statistics):
            if isinstance(statistic, Bins):
                grouped = histogram_sql(reader, statistic, kept(query, predicate))
                pairs = sorted((int(k), int(n)) for k, n in reader.rows(grouped)
                               if 0 <= int(k) < statistic.size)
                out[i][j] = Histogram(np.array([k for k, _ in pairs], np.int64),
                                      np.array([n for _, n in pairs], np.int64))
    return [tuple(v for v in values if v is not None) for values in out]


def pushdown_values(reader: SourceReader, query: LocalQuery,
                    predicate: Predicate) -> tuple[Value, ...]:
    """Every statistic of ``query`` on the rows ``predicate`` keeps (see
    :func:`pushdown_many`)."""
    return pushdown_many(reader, [(query, predicate)])[0]


@dataclass(frozen=True)
class SourceData:
    """:class:`~securecalc.core.local.LocalData` of a node's sources: statistics computed
    by the database; rows fetched (in batches) only for a kind that needs them."""

    reader: SourceReader

    @property
    def n_rows(self) -> int:
        return sum(self.reader.row_counts().values())

    def values(self, items: Sequence[tuple[LocalQuery, Predicate]]) -> list[tuple[Value, ...]]:
        return pushdown_many(self.reader, items)

    def table(self, columns: Sequence[str]) -> Table:
        return self.reader.table(columns)


__all__ = ["SourceData", "key_sql", "kept", "pushdown_many", "pushdown_values", "term_sql"]
