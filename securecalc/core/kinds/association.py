"""correlation and covariance matrices of numeric columns (complete cases).

Each site contributes ``n``, the sums ``S_j`` and the cross-products ``C_jk`` (j <= k) of the
columns centred at their public centres (see :func:`~securecalc.core.kinds.moment_sums.
centred_blocks`); the coordinator forms ``(C_jk - S_j S_k / n) / (n - 1)`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from securecalc.core.kinds._levels import Levels
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.design import numeric_term
from securecalc.core.kinds.moment_sums import centred_blocks, moment_plan, moments_from
from securecalc.core.kinds.options import column_list
from securecalc.core.limits import CORRELATION_COLUMNS
from securecalc.core.local_stats import Fixed, LocalQuery, Value, moment_statistics
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


class Association(Kind):
    """Pearson correlation or sample covariance (ddof = 1) of every pair of ``columns``.

    Rows missing any of the columns are left out (listwise, complete cases), so every entry
    uses the same n. value: ``{col: {col: number}}``; None when n < 2. A correlation with a
    column of zero variance is None (numpy gives NaN).
    """

    keys: ClassVar[Mapping[str, str]] = {"columns": "two or more numeric columns"}
    required: frozenset[str] = frozenset({"columns"})

    def __init__(self, name: str, reveals: str):
        self.name = name
        self.reveals = reveals

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        CORRELATION_COLUMNS.check_length(raw.get("columns"), "columns")
        return {"columns": column_list(raw, schema, "columns", numeric=True, min_length=2)}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(options["columns"])

    def _levels(self, analysis: Analysis, schema: Schema) -> Levels:
        return Levels.of(schema, analysis.options["columns"])

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        terms = [numeric_term(schema[c]) for c in analysis.options["columns"]]
        return self._levels(analysis, schema).after(
            moment_plan([t.half_range for t in terms], [t.integral for t in terms]))

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        # n of the complete cases, then the counts of both values of every 0/1 column: a
        # covariance with a 0/1 column held by one patient gives that patient's values
        assert isinstance(plan, SumPlan)
        return self._levels(analysis, schema).cohort_slots(plan)

    def local_query(self, analysis: Analysis, schema: Schema,
                    study: StudyOptions) -> LocalQuery:
        names = analysis.options["columns"]
        terms = [Fixed.of(schema[c]) for c in names]
        return LocalQuery(tuple(names), (*moment_statistics(terms),
                                         *self._levels(analysis, schema).statistics()))

    def assemble(self, analysis: Analysis, schema: Schema, query: LocalQuery,
                 values: tuple[Value, ...]) -> tuple[Any, ...]:
        return centred_blocks([Fixed.of(schema[c]) for c in analysis.options["columns"]],
                              values)

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        names = analysis.options["columns"]
        m = moments_from(released, len(names))
        if m.n < 2:
            return None, m.n
        p = len(names)
        cov = [[m.covariance(j, k) / (m.n - 1) for k in range(p)] for j in range(p)]
        if self.name == "covariance":
            value = {a: {b: float(max(cov[j][k], Fraction(0)) if j == k else cov[j][k])
                         for k, b in enumerate(names)} for j, a in enumerate(names)}
            return value, m.n
        out: dict[str, dict[str, float | None]] = {}
        for j, a in enumerate(names):
            out[a] = {}
            for k, b in enumerate(names):
                if cov[j][j] <= 0 or cov[k][k] <= 0:
                    out[a][b] = None
                elif j == k:
                    out[a][b] = 1.0
                else:
                    r2 = cov[j][k] ** 2 / (cov[j][j] * cov[k][k])
                    r = math.copysign(math.sqrt(min(1.0, float(r2))), cov[j][k])
                    out[a][b] = r
        return out, m.n


ASSOCIATION = (
    Association("correlation", "the pooled n, the mean and variance of every column and every "
                "covariance (from n, the sums and the cross-products); gated like linreg: each "
                "value of a 0/1 column held by at least min_cohort rows."),
    Association("covariance", "the pooled n and the mean of every column (from n and the "
                "sums); gated like linreg: each value of a 0/1 column held by at least "
                "min_cohort rows."),
)
