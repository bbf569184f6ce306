"""histogram and crosstab: counts per bin or per cell, with small counts withheld.

Both release counts under ``SumPlan.counts(..., suppress_below=min_cell_count)``: a pooled
count below the study's ``min_cell_count`` (default 5) is withheld by the engine and shown
as ``"<k"``. ``n`` is the number of rows in the released (not withheld) bins or cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from securecalc.core.analyses import Analysis
from securecalc.core.kinds._shared import ROWS
from securecalc.core.kinds.base import (
    Kind,
    StudyOptions,
    category_column,
    number_list,
    numeric_column,
    option_error,
    present,
)
from securecalc.core.limits import COUNT_CELLS, EDGES
from securecalc.core.plans import Plan, SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table


def count_plan(width: int, study: StudyOptions) -> SumPlan:
    return SumPlan((True,) * width, (ROWS,) * width, (1,) * width,
                   suppress_below=study.min_cell_count)


def shown(count: Fraction | None, study: StudyOptions) -> int | str:
    return f"<{study.min_cell_count}" if count is None else int(round(count))


def released_total(released: Sequence[Fraction | None]) -> int:
    return sum(int(round(c)) for c in released if c is not None)


class Histogram(Kind):
    """Counts per bin ``[e_i, e_{i+1})``, the last bin closed, like ``numpy.histogram``.

    Rows with the column missing, and values outside ``[edges[0], edges[-1]]``, are not
    counted. value: ``{"edges": [...], "counts": [int or "<k"]}``.
    """

    name = "histogram"
    dp_row_slots: ClassVar[str | None] = "one"  # a row falls in one bin
    reveals: ClassVar[str] = ("the pooled count of every bin, except that counts below "
                              "min_cell_count are withheld (only that they are small is "
                              "revealed).")
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

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        return count_plan(len(analysis.options["edges"]) - 1, study)

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
        return tuple(np.bincount(idx, minlength=bins).tolist())

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        counts = [shown(c, study) for c in released]
        return {"edges": list(analysis.options["edges"]), "counts": counts}, \
            released_total(released)


class Crosstab(Kind):
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
    dp_row_slots: ClassVar[str | None] = "one"  # a row falls in one cell
    reveals: ClassVar[str] = ("the pooled count of every cell, except that counts below "
                              "min_cell_count are withheld (only that they are small is "
                              "revealed).")
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

    def plan(self, analysis: Analysis, schema: Schema, engine: str,
             study: StudyOptions) -> Plan:
        rows, cols = self._shape(analysis, schema)
        return count_plan(len(rows) * len(cols), study)

    def local(self, analysis: Analysis, schema: Schema, table: Table, mask: np.ndarray,
              study: StudyOptions) -> tuple[int, ...]:
        rows, cols = self._shape(analysis, schema)
        row, col = analysis.options["row"], analysis.options["col"]
        keep = present(table, [row, col], mask)
        cell = table.column(row).values[keep] * len(cols) + table.column(col).values[keep]
        return tuple(np.bincount(cell, minlength=len(rows) * len(cols)).tolist())

    def finish(self, analysis: Analysis, schema: Schema, released: Any,
               study: StudyOptions) -> tuple[Any, int]:
        rows, cols = self._shape(analysis, schema)
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
            from scipy import stats  # the coordinator only: keeps node imports light

            value["chi2"] = {"statistic": float(statistic), "dof": dof,
                             "p_value": float(stats.chi2.sf(float(statistic), dof))}
        value["note"] = "; ".join(notes) or None
        return value, released_total(released)


TABLES = (Histogram(), Crosstab())
