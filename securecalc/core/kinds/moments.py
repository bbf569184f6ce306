"""count, sum, mean, variance, std: moments of one column (or a row count)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.kinds.base import Kind, StudyOptions, option_error
from securecalc.core.kinds.base import numeric_column as _numeric_column
from securecalc.core.plans import Plan
from securecalc.core.schema import Schema
from securecalc.core.statistics import finish, layout_of, local_statistics
from securecalc.core.table import Table


class Moment(Kind):
    """A moment kind; instances differ only by name (see :data:`MOMENTS`)."""

    keys: ClassVar[Mapping[str, str]] = {"column": "the column"}
    dp_row_slots: ClassVar[str | None] = "all"  # a row adds to n, S and Q

    def __init__(self, name: str, reveals: str, needs_column: bool = True):
        self.name = name  # type: ignore[misc]
        self.reveals = reveals  # type: ignore[misc]
        self.needs_column = needs_column
        self.required = frozenset({"column"} if needs_column else ())  # type: ignore[misc]

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        if not self.needs_column:
            column = raw.get("column")
            if column is None:
                return {}
            if not isinstance(column, str) or not column.strip():
                raise option_error(f"must name a column (a non-empty string), got {column!r}",
                                   "column")
            if column not in schema:
                known = ", ".join(schema.names()) or "none"
                raise option_error(f"unknown column {column!r} (schema declares: {known})",
                                   "column")
            return {"column": column}
        return {"column": _numeric_column(raw, schema)}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        column = options.get("column")
        return (column,) if column else ()

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        return layout_of(analysis, schema).plan()

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        return (0,)  # n

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[Any, ...]:
        return local_statistics(analysis, schema, table, mask)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        column = schema[analysis.column] if analysis.column else None
        return finish(analysis, column, released)


_POOLED = "the pooled n"
MOMENTS = (
    Moment("count", "nothing beyond the count (n).", needs_column=False),
    Moment("sum", f"{_POOLED} (reported with every result)."),
    Moment("mean", f"{_POOLED} (reported with every result)."),
    Moment("variance", f"{_POOLED} and the pooled mean (from n, sum and sum of squares)."),
    Moment("std", f"{_POOLED} and the pooled mean (from n, sum and sum of squares)."),
)
