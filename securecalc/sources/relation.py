"""The node's rows as one SQL relation: a row key and every catalogue column by its name.

Each source kind compiles to a :class:`Part` (its ``SELECT``, the tables and columns it needs,
and checks to run first); :mod:`securecalc.sources.compiler` joins the parts of a node's
sources with ``UNION ALL``. The relation holds raw values: :mod:`securecalc.sources.typed`
validates them and turns them into catalogue values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from securecalc.core.schema import Schema
from securecalc.core.source_model import PostgresConnection
from securecalc.sources.errors import SourceError
from securecalc.sources.sql import Dialect, Sql, ident, join, param, sql

ROW = "__row"  #: the row key column: a row number, person_id or Patient.id
SOURCE = "__source"  #: the source name column (keyed relations only)


@dataclass(frozen=True)
class Probe:
    """A relation that must exist with these columns (``LIMIT 0``) before the rows are read;
    ``columns`` maps each needed source column to the catalogue columns that need it."""

    what: str  #: e.g. "table cohort" or "file data.csv", for messages
    relation: Sql
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Presence:
    """A query returning one boolean: false means the ``column``'s definition finds nothing."""

    column: str
    query: Sql
    reason: str


@dataclass(frozen=True)
class Part:
    """One source's rows: ``select(keyed)`` is a ``SELECT`` of the catalogue columns."""

    source: str
    body: Sql  #: ``<catalogue expressions> FROM ...`` (without the row key)
    key: Sql  #: the row key expression
    probes: tuple[Probe, ...] = ()
    presence: tuple[Presence, ...] = ()
    prefix: Sql = Sql()  #: a ``WITH`` clause, if any
    key_name: str = "row"  #: what the row key is, for messages

    def select(self, *, keyed: bool) -> Sql:
        head = (sql("SELECT ") + self.key + sql(f" AS {ROW}, ") + param(self.source)
                + sql(f" AS {SOURCE}, ")) if keyed else sql("SELECT ")
        return self.prefix + head + self.body


@dataclass(frozen=True)
class Engine:
    """Where the relation runs: an in-memory DuckDB (files, FHIR), a DuckDB database file
    (OMOP) or a PostgreSQL server."""

    dialect: Dialect
    duckdb_path: str | None = None
    postgres: PostgresConnection | None = None


@dataclass(frozen=True)
class Relation:
    """The compiled relation of a node's sources."""

    engine: Engine
    parts: tuple[Part, ...]
    columns: tuple[str, ...]

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(part.source for part in self.parts)

    def select(self, *, keyed: bool = False) -> Sql:
        """The rows: catalogue columns (and, when ``keyed``, the row key and source name)."""
        return join(" UNION ALL ", (sql("(") + p.select(keyed=keyed) + sql(")")
                                    for p in self.parts))


def select_list(exprs: dict[str, Sql]) -> Sql:
    """``<expr> AS "<name>", ...``"""
    return join(", ", (expr + sql(" AS ") + ident(name) for name, expr in exprs.items()))


def check_definitions(source: str, catalogue: Schema, defined: Sequence[str]) -> None:
    """Every catalogue column defined, and nothing else (for OMOP and FHIR sources)."""
    for name in catalogue.names():
        if name not in defined:
            raise SourceError(source, "the source does not define this catalogue column",
                              column=name)
    for name in defined:
        if name not in catalogue:
            raise SourceError(source, "the source defines a column the catalogue does not "
                              "declare", column=name)


__all__ = ["ROW", "SOURCE", "Engine", "Part", "Presence", "Probe", "Relation",
           "check_definitions", "select_list"]
