"""The plaintext reference: analyses computed with numpy on the pooled rows of every site.

This is what a secure engine must reproduce; it needs every site's raw rows in one place, so
it exists only as an oracle for tests, the demo and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.schema import Schema
from securecalc.core.table import Table
from securecalc.core.where import parse_where


def pooled_values(analysis: Analysis, schema: Schema, tables: Sequence[Table]) -> np.ndarray:
    """The column values (or row markers for a plain count) the analysis uses, pooled."""
    predicate = parse_where(analysis.where, schema)
    parts = []
    for table in tables:
        mask = predicate.evaluate(table)
        if analysis.column is None:
            parts.append(np.ones(int(mask.sum())))
            continue
        column = table.column(analysis.column)
        parts.append(column.values[mask & ~column.missing])
    return np.concatenate(parts) if parts else np.empty(0)


MOMENTS = ("count", "sum", "mean", "variance", "std")
ORDER = {"median": 0.5, "min": 0.0, "max": 1.0}


def pooled_result(analysis: Analysis, schema: Schema,
                  tables: Sequence[Table]) -> tuple[float | int | None, int] | None:
    """``(value, n)`` computed with numpy on the pooled rows, for the kinds whose result is a
    single number (moments, median, min, max); None for the others."""
    kind = analysis.kind
    if kind not in MOMENTS and kind not in ORDER:
        return None
    x = pooled_values(analysis, schema, tables)
    n = int(x.size)
    if kind in ORDER:
        if not n:
            return None, 0
        value = np.quantile(x, ORDER[kind], method="inverted_cdf")
        return (int(value) if schema[analysis.column or ""].type == "int" else float(value)), n
    if kind == "count":
        return n, n
    if kind == "sum":
        is_int = schema[analysis.column or ""].type == "int"
        return (int(np.sum(x.astype(np.int64))) if is_int else float(np.sum(x))), n
    if kind == "mean":
        return (float(np.mean(x)) if n else None), n
    if n < 2:
        return None, n
    if kind == "variance":
        return float(np.var(x, ddof=1)), n
    return float(np.std(x, ddof=1)), n
