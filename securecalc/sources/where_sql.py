"""A parsed where-expression as a SQL condition over the typed relation.

The condition is built from the parsed tree, never from the filter's text: column names are
quoted identifiers of catalogue columns, literals are bound parameters (a category level as
its code, as the typed relation stores it). SQL's three-valued logic is the filter's: a
comparison with a missing value (NULL) is UNKNOWN, and UNKNOWN rows are not kept.
"""

from __future__ import annotations

from securecalc.core.schema import Column
from securecalc.core.where import (
    Predicate,
    _All,
    _And,
    _Compare,
    _In,
    _Node,
    _Not,
    _Or,
)
from securecalc.sources.sql import Sql, ident, join, param, params_list, sql

_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _operand(column: Column, value: object) -> int | float:
    """The literal as the typed relation stores it: a level code, or the number."""
    if column.type == "category":
        assert isinstance(value, str)
        return column.levels.index(value)
    if isinstance(value, int) and abs(value) < 2**62:
        return value
    assert isinstance(value, int | float)
    return float(value)


def _condition(node: _Node) -> Sql:
    if isinstance(node, _All):
        return sql("TRUE")
    if isinstance(node, _Not):
        return sql("(NOT ") + _condition(node.child) + sql(")")
    if isinstance(node, _And | _Or):
        word = " AND " if isinstance(node, _And) else " OR "
        return sql("(") + join(word, (_condition(c) for c in node.children)) + sql(")")
    column = ident(node.column.name)
    if isinstance(node, _Compare):
        return (sql("(") + column + sql(f" {_OPS[node.op]} ")
                + param(_operand(node.column, node.value)) + sql(")"))
    assert isinstance(node, _In)
    values = [_operand(node.column, v) for v in node.values]
    word = " NOT IN " if node.negated else " IN "
    return sql("(") + column + sql(word) + params_list(values) + sql(")")


def where_sql(predicate: Predicate) -> Sql:
    """The SQL condition keeping exactly the rows ``predicate.evaluate`` keeps."""
    return _condition(predicate._node)


__all__ = ["where_sql"]
