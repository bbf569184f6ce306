"""Catalogue types in SQL: what counts as a violation, and the typed value of each column.

Raw values are validated first (:func:`violations`); the typed relation (:func:`typed_select`)
then assumes they passed: int and float columns are DOUBLE/BIGINT (NULL = missing, NaN in a
float column is missing), a category column is its level's code (0-based, NULL = missing).
"""

from __future__ import annotations

from securecalc.core.schema import Column, Schema
from securecalc.sources.relation import ROW, SOURCE, Relation
from securecalc.sources.sql import Dialect, Sql, ident, join, param, params_list, sql

#: what PostgreSQL's float8 input accepts of a number's text, without raising
_PG_NUMBER = r"^\s*([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[Nn][Aa][Nn])\s*$"


def _double(dialect: Dialect) -> str:
    return "DOUBLE" if dialect == "duckdb" else "double precision"


def _text(raw: Sql, dialect: Dialect) -> Sql:
    return sql("CAST(") + raw + sql(" AS VARCHAR)" if dialect == "duckdb" else " AS text)")


def number_or_null(raw: Sql, dialect: Dialect) -> Sql:
    """``raw`` as a double, or NULL when it is not a number (never an error)."""
    if dialect == "duckdb":
        return sql("TRY_CAST(") + raw + sql(" AS DOUBLE)")
    text = _text(raw, dialect)
    return (sql("CASE WHEN ") + text + sql(" ~ ") + param(_PG_NUMBER) + sql(" THEN CAST(")
            + text + sql(" AS double precision) END"))


def is_nan(number: Sql, dialect: Dialect) -> Sql:
    if dialect == "duckdb":
        return sql("isnan(") + number + sql(")")
    return sql("(") + number + sql(" = CAST('NaN' AS double precision))")


def missing(column: Column, raw: Sql, dialect: Dialect) -> Sql:
    """The condition of a missing value: NULL, or NaN in a float column."""
    if column.type != "float":
        return raw + sql(" IS NULL")
    return (raw + sql(" IS NULL OR coalesce(") + is_nan(number_or_null(raw, dialect), dialect)
            + sql(", false)"))


def violations(column: Column, raw: Sql, dialect: Dialect) -> list[tuple[str, Sql]]:
    """(reason, condition) pairs: a row violates the catalogue when a condition holds."""
    present = raw + sql(" IS NOT NULL")
    if column.type == "category":
        return [("values that are not declared levels",
                 present + sql(" AND ") + _text(raw, dialect) + sql(" NOT IN ")
                 + params_list(column.levels))]
    number = number_or_null(raw, dialect)
    nan = is_nan(number, dialect)
    out = [("values that are not numbers", present + sql(" AND ") + number + sql(" IS NULL"))]
    if column.type == "int":
        out.append(("values that are not whole numbers",
                    number + sql(" IS NOT NULL AND (") + nan + sql(" OR ") + number
                    + sql(" <> floor(") + number + sql("))")))
    assert column.min is not None and column.max is not None
    out.append((f"values outside the declared bounds [{column.min:g}, {column.max:g}]",
                number + sql(" IS NOT NULL AND NOT ") + nan + sql(" AND (") + number
                + sql(" < ") + param(column.min) + sql(" OR ") + number + sql(" > ")
                + param(column.max) + sql(")")))
    return out


def typed_value(column: Column, raw: Sql, dialect: Dialect) -> Sql:
    """The catalogue value of an already validated raw value."""
    if column.type == "category":
        cases = join(" ", (sql("WHEN ") + param(level) + sql(f" THEN {code}")
                           for code, level in enumerate(column.levels)))
        return sql("CASE ") + _text(raw, dialect) + sql(" ") + cases + sql(" END")
    number = sql("CAST(") + raw + sql(f" AS {_double(dialect)})")
    if column.type == "int":
        return sql("CAST(") + number + sql(" AS BIGINT)")
    return sql("CASE WHEN ") + is_nan(number, dialect) + sql(" THEN NULL ELSE ") + number + sql(
        " END")


def typed_select(relation: Relation, catalogue: Schema, *, ordered: bool = False) -> Sql:
    """``SELECT`` of every catalogue column, typed, from the (validated) relation;
    ``ordered``: by source and row key, so that the rows, and any float sum over them, come
    out the same whatever plan the database picks."""
    exprs = [typed_value(c, sql("r.") + ident(c.name), relation.dialect) + sql(" AS ")
             + ident(c.name) for c in catalogue]
    query = (sql("SELECT ") + join(", ", exprs) + sql(" FROM (")
             + relation.select(keyed=ordered) + sql(") AS r"))
    return query + sql(f" ORDER BY r.{SOURCE}, r.{ROW}") if ordered else query


def aggregate_select(relation: Relation, catalogue: Schema, aggregates: list[Sql],
                     where: Sql | None = None) -> Sql:
    """``SELECT <aggregates> FROM (<typed relation>) AS t [WHERE <where>]``.

    ``aggregates`` and ``where`` refer to catalogue columns through :func:`ident` and carry
    any value as a bound parameter: the seam for pushing sufficient statistics down.
    """
    query = (sql("SELECT ") + join(", ", aggregates) + sql(" FROM (")
             + typed_select(relation, catalogue) + sql(") AS t"))
    return query + sql(" WHERE ") + where if where is not None else query


__all__ = ["aggregate_select", "is_nan", "missing", "number_or_null", "typed_select", "typed_value",
           "violations"]
