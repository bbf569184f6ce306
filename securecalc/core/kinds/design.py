"""Design terms of models and moment kinds: centred numeric columns and 0/1 level
indicators of category columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from securecalc.core.kinds.bounds import center, half_range
from securecalc.core.local_stats import Fixed, Indicator
from securecalc.core.local_stats import Term as RowTerm
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table


@dataclass(frozen=True)
class Term:
    """One column of a design: a centred numeric column or a 0/1 level indicator."""

    name: str
    column: str
    level: int | None  # code of the level for an indicator
    center: Fraction  # subtracted from the value (0 for indicators)
    half_range: Fraction  # largest |value - center|
    integral: bool

    def row_term(self, schema: Schema) -> RowTerm:
        """The term as an exact per-row integer (see :mod:`securecalc.core.local_stats`)."""
        if self.level is not None:
            return Indicator(self.column, self.level)
        return Fixed.of(schema[self.column])

    def values(self, table: Table, keep: np.ndarray) -> np.ndarray:
        """Centred int64 (integral terms) or float64 values on the rows ``keep``."""
        raw: np.ndarray = table.column(self.column).values[keep]
        if self.level is not None:
            indicator: np.ndarray = raw == self.level
            return indicator.astype(np.int64)
        if self.integral:
            return raw.astype(np.int64) - np.int64(int(self.center))
        return raw.astype(np.float64) - float(self.center)


def numeric_term(column: Column) -> Term:
    return Term(column.name, column.name, None, center(column), half_range(column),
                column.type == "int")


def design_terms(schema: Schema, names: Sequence[str]) -> list[Term]:
    """Numeric columns centred at their public centre; each category expands to indicators
    of its levels after the first (the reference), named ``column[level]``."""
    terms: list[Term] = []
    for name in names:
        column = schema[name]
        if column.type == "category":
            terms.extend(Term(f"{name}[{level}]", name, code, Fraction(0), Fraction(1), True)
                         for code, level in enumerate(column.levels) if code > 0)
        else:
            terms.append(numeric_term(column))
    return terms
