"""``geometric_mean``: a kind written for the test suite only, from the public kind API.

The geometric mean of a column whose declared bounds are positive, ``exp(mean(log x))``.
Each site contributes ``(n, sum log x)``: a count and a float sum of a transformed column,
a SumPlan unlike any built-in kind's. Registered by the tests that use it, never by the
package: it needs no edit outside this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.kinds import Kind, StudyOptions
from securecalc.core.kinds.bounds import ROWS
from securecalc.core.kinds.options import numeric_column, option_error
from securecalc.core.kinds.rows import present
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table


def log_bound(column: Column) -> Fraction:
    """A whole number at least ``|log x|`` over the column's declared range."""
    assert column.min is not None and column.max is not None
    return Fraction(math.ceil(max(abs(math.log(column.min)), abs(math.log(column.max)))) + 1)


class GeometricMean(Kind):
    name = "geometric_mean"
    reveals = "the pooled count and the pooled sum of the logarithms."
    keys = {"column": "numeric column with positive bounds"}
    required = frozenset({"column"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        name = numeric_column(raw, schema)
        low = schema[name].min
        if low is None or low <= 0:
            raise option_error(f"needs a column whose lower bound is positive; {name!r} "
                               "may hold values <= 0", "column")
        return {"column": name}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["column"],)

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        bound = log_bound(schema[analysis.column or ""])
        return SumPlan((True, False), (ROWS, ROWS * bound), (1, bound))

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[int, float]:
        name = analysis.column or ""
        values = table.column(name).values[present(table, [name], mask)].astype(np.float64)
        return int(values.size), float(np.sum(np.log(values)))

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        return (0,)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[float | None, int]:
        n = int(round(released[0]))
        return (math.exp(float(released[1]) / n) if n else None), n


GEOMETRIC_MEAN = GeometricMean()
