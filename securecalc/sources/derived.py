"""SQL for derived values shared by the OMOP and FHIR compilers (portable SQL)."""

from __future__ import annotations

from collections.abc import Mapping

from securecalc.core.source_model import BoolLevels
from securecalc.sources.sql import Sql, join, param, sql


def bool_value(condition: Sql, levels: BoolLevels | None) -> Sql:
    """A yes/no fact as its levels, or as 1/0."""
    yes, no = (param(levels.true), param(levels.false)) if levels else (sql("1"), sql("0"))
    return sql("CASE WHEN ") + condition + sql(" THEN ") + yes + sql(" ELSE ") + no + sql(" END")


def mapped(value: Sql, levels: Mapping[str, str] | Mapping[int, str]) -> Sql:
    """``value`` mapped through ``levels``; anything unmapped is NULL (missing)."""
    cases = join(" ", (sql("WHEN ") + param(k) + sql(" THEN ") + param(v)
                       for k, v in levels.items()))
    return sql("CASE ") + value + sql(" ") + cases + sql(" END")


def age_in_years(index: Sql, year: Sql, month: Sql, day: Sql) -> Sql:
    """Whole years from the birth date (year, month, day) to ``index``."""
    before = (sql("CASE WHEN EXTRACT(MONTH FROM ") + index + sql(") < ") + month
              + sql(" OR (EXTRACT(MONTH FROM ") + index + sql(") = ") + month
              + sql(" AND EXTRACT(DAY FROM ") + index + sql(") < ") + day
              + sql(") THEN 1 ELSE 0 END"))
    return (sql("CAST(EXTRACT(YEAR FROM ") + index + sql(") - ") + year + sql(" - ") + before
            + sql(" AS BIGINT)"))


__all__ = ["age_in_years", "bool_value", "mapped"]
