"""Counts per level of the category and 0/1 columns an analysis's released numbers depend on.

A regression coefficient of a level (or a 0/1 predictor) is a contrast between the rows in
that level and the rest: with one patient in the level, or one outside it, the intercept plus
the coefficient is that patient's value. So such analyses add, per level, the pooled count in
the level and the count outside it (for a two-valued column the two levels' counts, which are
each other's complements) to their sums, and gate every one of them by ``min_cohort``. These
counts follow from X'X and n, so releasing them reveals nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from securecalc.core.local_stats import Count, Equals, Statistic
from securecalc.core.plans import SumPlan
from securecalc.core.schema import Schema
from securecalc.core.table import Table


def level_values(schema: Schema, name: str) -> tuple[int, ...]:
    """The stored values of a column's levels: category codes, or 0 and 1 for an int column
    whose declared range is [0, 1]; empty for any other column."""
    column = schema[name]
    if column.type == "category":
        return tuple(range(len(column.levels)))
    if column.type == "int" and column.min == 0 and column.max == 1:
        return (0, 1)
    return ()


@dataclass(frozen=True)
class Levels:
    """The levelled columns among ``columns`` and their values."""

    columns: tuple[tuple[str, tuple[int, ...]], ...]

    @staticmethod
    def of(schema: Schema, names: Sequence[str]) -> Levels:
        return Levels(tuple((name, values) for name in names
                            if len(values := level_values(schema, name)) >= 2))

    @property
    def width(self) -> int:
        """Count slots: two per value (in, out), or one per value of a two-valued column."""
        return sum(len(v) if len(v) == 2 else 2 * len(v) for _, v in self.columns)

    def plan(self) -> SumPlan:
        return SumPlan.counts(self.width)

    def after(self, moments: SumPlan) -> SumPlan:
        """``moments`` (n first) with these counts appended."""
        return SumPlan.concat([moments, self.plan()])

    def cohort_slots(self, plan: SumPlan) -> tuple[int, ...]:
        """n and these counts in a plan made by :meth:`after`: all gated by ``min_cohort``."""
        return (0, *range(plan.width - self.width, plan.width))

    def statistics(self, when: tuple[Equals, ...] = ()) -> tuple[Statistic, ...]:
        """The counts of :meth:`plan` as statistics, on rows that also satisfy ``when``."""
        out: list[Statistic] = []
        for name, values in self.columns:
            for value in values:
                out.append(Count((*when, Equals(name, value))))
                if len(values) != 2:
                    out.append(Count((*when, Equals(name, value, negated=True))))
        return tuple(out)

    def local(self, table: Table, keep: np.ndarray) -> tuple[int, ...]:
        """This site's counts on the rows ``keep``, in the order of :meth:`plan`."""
        out: list[int] = []
        total = int(np.count_nonzero(keep))
        for name, values in self.columns:
            raw = table.column(name).values[keep]
            for value in values:
                inside = int(np.count_nonzero(raw == value))
                out += [inside] if len(values) == 2 else [inside, total - inside]
        return tuple(out)
