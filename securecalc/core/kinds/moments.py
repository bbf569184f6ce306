"""count, sum, mean, variance, std: moments of one column (or a row count).

The sum of a 0/1 column (an int column declared on [0, 1]) is a count: how many patients of
the cohort have the value 1. Its exact moments therefore add the counts of both values to the
plan, each gated like a table cell (0 or at least ``min_cell_count``): otherwise a mean of 1/n
would say that one patient of the cohort has it. Noisy moments (``epsilon``) need no such gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from securecalc.core.kinds._levels import Levels
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.options import numeric_column as _numeric_column
from securecalc.core.kinds.options import option_error
from securecalc.core.local_stats import (
    Count,
    Fixed,
    LocalQuery,
    Value,
    centred_moments,
    moment_statistics,
)
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.statistics import finish, layout_of

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


class Moment(Kind):
    """A moment kind; instances differ only by name (see :data:`MOMENTS`)."""

    keys: ClassVar[Mapping[str, str]] = {"column": "the column"}
    dp_row_slots: ClassVar[str | None] = "all"  # a row adds to n, S and Q

    def __init__(self, name: str, reveals: str, needs_column: bool = True):
        self.name = name
        self.reveals = reveals
        self.needs_column = needs_column
        self.required = frozenset({"column"} if needs_column else ())

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

    def _values(self, analysis: Analysis, schema: Schema) -> Levels:
        """The counts of each value of an exact moment's 0/1 column (none otherwise)."""
        if not self.needs_column or analysis.epsilon is not None:
            return Levels(())
        return Levels.of(schema, [analysis.column] if analysis.column else [])

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        moments = layout_of(analysis, schema).plan()
        values = self._values(analysis, schema)
        return values.after(moments) if values.width else moments

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        return (0,)  # n

    def cell_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        assert isinstance(plan, SumPlan)
        width = self._values(analysis, schema).width
        return tuple(range(plan.width - width, plan.width))

    def withheld_note(self, analysis: Analysis, study: StudyOptions) -> str:
        if not self.needs_column:
            return super().withheld_note(analysis, study)
        return (f"withheld: the cohort is smaller than min_cohort ({study.min_cohort}), or "
                f"(of a 0/1 column) between 1 and min_cell_count - 1 ({study.min_cell_count} "
                "- 1) patients have one of its values")

    def local_query(self, analysis: Analysis, schema: Schema,
                    study: StudyOptions) -> LocalQuery:
        """``n`` (of the rows with the column present), then the raw sums of the column's
        exact per-row value and of its square, then the counts of each value of a 0/1
        column."""
        if analysis.column is None or layout_of(analysis, schema).width == 1:
            present = (analysis.column,) if analysis.column else ()
            return LocalQuery(present, (Count(), *self._values(analysis, schema).statistics()))
        term = Fixed.of(schema[analysis.column])
        return LocalQuery((analysis.column,), (*moment_statistics([term]),
                                               *self._values(analysis, schema).statistics()))

    def assemble(self, analysis: Analysis, schema: Schema, query: LocalQuery,
                 values: tuple[Value, ...]) -> tuple[Any, ...]:
        """``n, S, Q`` about the column's centre (as the kind's width needs), then the
        counts."""
        if analysis.column is None or layout_of(analysis, schema).width == 1:
            return values
        width = layout_of(analysis, schema).width
        moments = centred_moments([Fixed.of(schema[analysis.column])], values[:3])
        return (*moments[:width], *values[3:])

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        column = schema[analysis.column] if analysis.column else None
        return finish(analysis, column, released[:layout_of(analysis, schema).width])


_POOLED = "the pooled n"
MOMENTS = (
    Moment("count", "nothing beyond the count (n).", needs_column=False),
    Moment("sum", f"{_POOLED} (reported with every result). Of a 0/1 column, released only "
           "if the count of each value is 0 or at least min_cell_count."),
    Moment("mean", f"{_POOLED} (reported with every result). Of a 0/1 column, released only "
           "if the count of each value is 0 or at least min_cell_count."),
    Moment("variance", f"{_POOLED} and the pooled mean (from n, sum and sum of squares). Of a "
           "0/1 column, released only if the count of each value is 0 or at least "
           "min_cell_count."),
    Moment("std", f"{_POOLED} and the pooled mean (from n, sum and sum of squares). Of a 0/1 "
           "column, released only if the count of each value is 0 or at least "
           "min_cell_count."),
)
