"""ttest: Welch's two-sample t-test of a numeric column between two levels of a category.

Matches ``scipy.stats.ttest_ind(a, b, equal_var=False)``; the 95% interval of the difference
of means uses the same Welch-Satterthwaite degrees of freedom. Each site contributes, per
level, ``n``, ``S = sum(x - c)`` and ``Q = sum((x - c)**2)`` with c the column's public centre;
the coordinator finishes them exactly. For a 0/1 column (an int column declared on [0, 1])
each level's sum is a count of patients, so the plan adds, per level, the count of each value,
gated like a table cell (0 or at least ``min_cell_count``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.distributions import t_ppf, t_sf
from securecalc.core.kinds._levels import Levels
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.bounds import center, half_range
from securecalc.core.kinds.design import numeric_term
from securecalc.core.kinds.moment_sums import moment_local, moment_plan, moment_width, moments_from
from securecalc.core.kinds.options import category_column, level_list, numeric_column
from securecalc.core.kinds.rows import present
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


class TTest(Kind):
    """Rows missing the column or the group, or in other levels, are left out (listwise).

    value: ``{"t", "df", "p_value", "mean_difference" (mean_a - mean_b), "ci95": [lo, hi],
    "n": {a: n_a, b: n_b}, "mean": {a: mean_a, b: mean_b}}``; None when a level has fewer
    than two rows. When both levels have zero variance, t, df, p_value and ci95 are None.
    """

    name = "ttest"
    reveals: ClassVar[str] = ("the pooled n, mean and variance of the column in each of the "
                              "two levels (from each level's n, sum and sum of squares). Of a "
                              "0/1 column, released only if in each level the count of each "
                              "value is 0 or at least min_cell_count.")
    keys: ClassVar[Mapping[str, str]] = {
        "column": "the numeric column",
        "group": "the category column that splits the rows",
        "levels": "the two levels to compare, [a, b] (difference a - b)",
    }
    required: ClassVar[frozenset[str]] = frozenset({"column", "group", "levels"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        column = numeric_column(raw, schema)
        group = category_column(raw, schema, "group")
        levels = level_list(raw, "levels", schema[group], length=2)
        return {"column": column, "group": group, "levels": levels}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["column"], options["group"])

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        assert analysis.column is not None
        column = schema[analysis.column]
        one = moment_plan([half_range(column)], [column.type == "int"])
        values = self._values(analysis, schema).plan()
        return SumPlan.concat([one, one, values, values])

    def _values(self, analysis: Analysis, schema: Schema) -> Levels:
        """The counts of each value of a 0/1 column (none for another column)."""
        assert analysis.column is not None
        return Levels.of(schema, [analysis.column])

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        return (0, moment_width(1))  # n of each level

    def cell_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        assert isinstance(plan, SumPlan)
        return tuple(range(2 * moment_width(1), plan.width))

    def withheld_note(self, analysis: Analysis, study: StudyOptions) -> str:
        return (f"withheld: a level holds fewer than min_cohort ({study.min_cohort}) rows, or "
                f"(of a 0/1 column) between 1 and min_cell_count - 1 ({study.min_cell_count} "
                "- 1) patients of a level have one of its values")

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[Any, ...]:
        assert analysis.column is not None
        group = analysis.options["group"]
        term = numeric_term(schema[analysis.column])
        keep = present(table, [analysis.column, group], mask)
        codes = table.column(group).values
        out: list[Any] = []
        counts: list[int] = []
        values = self._values(analysis, schema)
        for level in analysis.options["levels"]:
            rows = keep & (codes == schema[group].levels.index(level))
            out.extend(moment_local([term.moment_input(table, rows)]))
            counts.extend(values.local(table, rows))
        return (*out, *counts)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        assert analysis.column is not None
        a, b = analysis.options["levels"]
        c = center(schema[analysis.column])
        width = moment_width(1)
        groups = [moments_from(released, 1, offset=i * width) for i in range(2)]
        n_a, n_b = groups[0].n, groups[1].n
        if n_a < 2 or n_b < 2:
            return None, n_a + n_b
        means = [c + g.S[0] / g.n for g in groups]
        var = [max(Fraction(0), g.covariance(0, 0)) / (g.n - 1) for g in groups]
        parts = [v / g.n for v, g in zip(var, groups, strict=True)]
        se2 = parts[0] + parts[1]
        difference = means[0] - means[1]
        value: dict[str, Any] = {
            "t": None, "df": None, "p_value": None,
            "mean_difference": float(difference), "ci95": None,
            "n": {a: n_a, b: n_b}, "mean": {a: float(means[0]), b: float(means[1])},
        }
        if se2 > 0:
            df = float(se2 * se2 / (parts[0] ** 2 / (n_a - 1) + parts[1] ** 2 / (n_b - 1)))
            se = math.sqrt(se2)
            t = float(difference) / se
            half = t_ppf(0.975, df) * se
            value.update(t=t, df=df, p_value=2 * t_sf(abs(t), df),
                         ci95=[float(difference) - half, float(difference) + half])
        return value, n_a + n_b


TTESTS = (TTest(),)
