"""histogram and crosstab: counts per bin or per cell.

Exact counts follow DataSHIELD's rule: the table is released only if every cell is 0 or at
least the study's ``min_cell_count`` and the table holds at least ``min_cohort`` rows;
otherwise nothing of it is released (value and n null, and a note). So no released count sits
beside a hidden one, and no cell follows from ``n`` by subtraction. The plan appends the
table's total as one more slot (the cohort gate's); the engines decide both gates in one
secure test. With ``epsilon`` the counts are noisy, so subtraction yields only noisy values:
each cell below ``min_cell_count`` is then withheld on its own (``SumPlan.suppress_below``) and
shown as ``"<k"``, and ``n`` counts the rows in released cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from securecalc.core.distributions import chi2_sf
from securecalc.core.kinds.base import Kind, StudyOptions
from securecalc.core.kinds.bounds import ROWS
from securecalc.core.kinds.options import category_column, number_list, numeric_column, option_error
from securecalc.core.kinds.rows import present
from securecalc.core.limits import COUNT_CELLS, EDGES
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table

if TYPE_CHECKING:  # annotations only: analyses imports the kinds
    from securecalc.core.analyses import Analysis


def shown(count: Fraction | None, study: StudyOptions) -> int | str:
    return f"<{study.min_cell_count}" if count is None else int(round(count))


def released_total(released: Sequence[Fraction | None]) -> int:
    return sum(int(round(c)) for c in released if c is not None)


class _Counts(Kind):
    """The plan, gates and local total shared by the count tables."""

    dp_row_slots: ClassVar[str | None] = "one"  # a row falls in one cell
    reveals: ClassVar[str] = (
        "nothing beyond the released counts, or that the table was withheld (a cell between "
        "1 and min_cell_count - 1, or fewer than min_cohort rows); with epsilon, which noisy "
        "counts are below min_cell_count.")

    def cells(self, analysis: Analysis, schema: Schema) -> int:
        raise NotImplementedError

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        cells = self.cells(analysis, schema)
        if analysis.epsilon is not None:  # noisy: each small cell withheld on its own
            return SumPlan((True,) * cells, (ROWS,) * cells, (1,) * cells,
                           suppress_below=study.min_cell_count)
        return SumPlan.counts(cells + 1)  # the cells, then their total

    def cohort_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        assert isinstance(plan, SumPlan)
        return () if plan.suppress_below else (plan.width - 1,)

    def cell_slots(self, analysis: Analysis, schema: Schema, plan: Plan) -> tuple[int, ...]:
        assert isinstance(plan, SumPlan)
        return () if plan.suppress_below else tuple(range(plan.width - 1))

    def withheld_note(self, analysis: Analysis, study: StudyOptions) -> str:
        return (f"withheld: a cell is below min_cell_count ({study.min_cell_count}) or the "
                f"table holds fewer than min_cohort ({study.min_cohort}) rows; merge levels "
                "or widen bins")

    @staticmethod
    def with_total(analysis: Analysis, counts: np.ndarray) -> tuple[int, ...]:
        """This site's cells, then (exact counts) their total."""
        cells = tuple(counts.tolist())
        return cells if analysis.epsilon is not None else (*cells, int(counts.sum()))


class Histogram(_Counts):
    """Counts per bin ``[e_i, e_{i+1})``, the last bin closed, like ``numpy.histogram``.

    Rows with the column missing, and values outside ``[edges[0], edges[-1]]``, are not
    counted. value: ``{"edges": [...], "counts": [int or "<k"]}``.
    """

    name = "histogram"
    keys: ClassVar[Mapping[str, str]] = {
        "column": "the numeric column",
        "edges": "bin edges, strictly increasing, at least 2 (values outside are not counted)",
    }
    required: ClassVar[frozenset[str]] = frozenset({"column", "edges"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        column = numeric_column(raw, schema)
        EDGES.check_length(raw.get("edges"), "edges")
        number_list(raw, "edges", increasing=True, min_length=2)
        return {"column": column, "edges": list(raw["edges"])}

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["column"],)

    def counts(self, options: Mapping[str, Any], schema: Schema) -> int:
        return len(options["edges"]) - 1

    def cells(self, analysis: Analysis, schema: Schema) -> int:
        return len(analysis.options["edges"]) - 1

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[int, ...]:
        assert analysis.column is not None
        edges = np.asarray(analysis.options["edges"], dtype=np.float64)
        bins = len(edges) - 1
        keep = present(table, [analysis.column], mask)
        x = table.column(analysis.column).values[keep].astype(np.float64)
        idx = np.searchsorted(edges, x, side="right") - 1
        idx[x == edges[-1]] = bins - 1
        idx = idx[(idx >= 0) & (idx < bins)]
        return self.with_total(analysis, np.bincount(idx, minlength=bins))

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        released = released[:self.cells(analysis, schema)]
        counts = [shown(c, study) for c in released]
        return {"edges": list(analysis.options["edges"]), "counts": counts}, \
            released_total(released)


class Crosstab(_Counts):
    """Contingency table of two category columns and Pearson's chi-square test of
    independence (no continuity correction, as ``scipy.stats.chi2_contingency(correction=
    False)``).

    Rows missing either column are left out. The test is computed only when no cell was
    withheld; levels whose pooled row or column total is zero are dropped from it (their
    expected counts would be zero) and named in ``note``. value: ``{"table": {row_level:
    {col_level: count or "<k"}}, "chi2": {"statistic", "dof", "p_value"} or None,
    "note": str or None}``.
    """

    name = "crosstab"
    keys: ClassVar[Mapping[str, str]] = {"row": "category column of the rows",
                                         "col": "category column of the columns"}
    required: ClassVar[frozenset[str]] = frozenset({"row", "col"})

    def parse(self, raw: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
        row = category_column(raw, schema, "row")
        col = category_column(raw, schema, "col")
        if row == col:
            raise option_error(f"must differ from row (both are {row!r})", "col")
        out = {"row": row, "col": col}
        COUNT_CELLS.check(self.counts(out, schema),
                          hint="a crosstab has one count per pair of levels")
        return out

    def columns(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["row"], options["col"])

    def counts(self, options: Mapping[str, Any], schema: Schema) -> int:
        return len(schema[options["row"]].levels) * len(schema[options["col"]].levels)

    def _shape(self, analysis: Analysis, schema: Schema) -> tuple[tuple[str, ...], ...]:
        return schema[analysis.options["row"]].levels, schema[analysis.options["col"]].levels

    def cells(self, analysis: Analysis, schema: Schema) -> int:
        rows, cols = self._shape(analysis, schema)
        return len(rows) * len(cols)

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[int, ...]:
        rows, cols = self._shape(analysis, schema)
        row, col = analysis.options["row"], analysis.options["col"]
        keep = present(table, [row, col], mask)
        cell = table.column(row).values[keep] * len(cols) + table.column(col).values[keep]
        return self.with_total(analysis, np.bincount(cell, minlength=len(rows) * len(cols)))

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        rows, cols = self._shape(analysis, schema)
        released = released[:len(rows) * len(cols)]
        c = len(cols)
        table = {r: {col: shown(released[i * c + j], study) for j, col in enumerate(cols)}
                 for i, r in enumerate(rows)}
        value: dict[str, Any] = {"table": table, "chi2": None, "note": None}
        if any(v is None for v in released):
            value["note"] = (f"chi-square not computed: a cell below min_cell_count "
                             f"({study.min_cell_count}) was withheld")
            return value, released_total(released)
        counts = [[Fraction(released[i * c + j]) for j in range(c)] for i in range(len(rows))]
        row_sum = [sum(r, Fraction(0)) for r in counts]
        col_sum = [sum((r[j] for r in counts), Fraction(0)) for j in range(c)]
        keep_r = [i for i, s in enumerate(row_sum) if s > 0]
        keep_c = [j for j, s in enumerate(col_sum) if s > 0]
        dropped = [f"{analysis.options['row']}={rows[i]!r}" for i in range(len(rows))
                   if i not in keep_r]
        dropped += [f"{analysis.options['col']}={cols[j]!r}" for j in range(c) if j not in keep_c]
        notes = [f"levels with no rows left out of the test: {', '.join(dropped)}"] \
            if dropped else []
        if len(keep_r) < 2 or len(keep_c) < 2:
            notes.append("chi-square not computed: fewer than two rows or columns have counts")
        else:
            n = sum(row_sum, Fraction(0))
            statistic = Fraction(0)
            for i in keep_r:
                for j in keep_c:
                    expected = row_sum[i] * col_sum[j] / n
                    statistic += (counts[i][j] - expected) ** 2 / expected
            dof = (len(keep_r) - 1) * (len(keep_c) - 1)
            value["chi2"] = {"statistic": float(statistic), "dof": dof,
                             "p_value": chi2_sf(float(statistic), dof)}
        value["note"] = "; ".join(notes) or None
        return value, released_total(released)


TABLES = (Histogram(), Crosstab())
