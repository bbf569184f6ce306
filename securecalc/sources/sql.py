"""SQL text built from fixed fragments, quoted identifiers and bound parameters.

A :class:`Sql` is a sequence of parts: text written by securecalc, and :class:`Param` values
that are only ever sent as bound parameters. Identifiers are quoted by :func:`ident`. Nothing
a node operator or a study supplies is pasted into the text, except a declared read-only
query (:mod:`securecalc.core.readonly_sql` checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["duckdb", "postgres"]


@dataclass(frozen=True)
class Param:
    """A value sent as a bound parameter."""

    value: object


@dataclass(frozen=True)
class Sql:
    """A fragment of SQL: text parts and bound parameters, rendered per dialect."""

    parts: tuple[str | Param, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        right = other.parts if isinstance(other, Sql) else (other,)
        return Sql(self.parts + right)

    def __radd__(self, other: str) -> Sql:
        return Sql((other,) + self.parts)

    def render(self, dialect: Dialect) -> tuple[str, list[object]]:
        """The statement text and its parameters: ``$n`` for DuckDB, ``%s`` for psycopg."""
        text: list[str] = []
        params: list[object] = []
        for part in self.parts:
            if isinstance(part, Param):
                params.append(part.value)
                text.append(f"${len(params)}" if dialect == "duckdb" else "%s")
            else:
                text.append(part if dialect == "duckdb" else part.replace("%", "%%"))
        return "".join(text), params


def sql(text: str) -> Sql:
    """A fragment of fixed text written by securecalc."""
    return Sql((text,))


def param(value: object) -> Sql:
    """A bound parameter."""
    return Sql((Param(value),))


def ident(*names: str) -> Sql:
    """A (qualified) identifier, each part double-quoted."""
    for name in names:
        if not name or "\x00" in name:
            raise ValueError("identifiers must be non-empty and free of NUL characters")
    return sql(".".join('"' + name.replace('"', '""') + '"' for name in names))


def join(separator: str, fragments: Iterable[Sql]) -> Sql:
    """``fragments`` separated by ``separator``."""
    out = Sql()
    for i, fragment in enumerate(fragments):
        out = out + (sql(separator) + fragment if i else fragment)
    return out


def params_list(values: Sequence[object]) -> Sql:
    """``(p1, p2, ...)`` of bound parameters, for ``IN``."""
    return sql("(") + join(", ", (param(v) for v in values)) + sql(")")


__all__ = ["Dialect", "Param", "Sql", "ident", "join", "param", "params_list", "sql"]
