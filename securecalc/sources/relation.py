"""The node's rows as one SQL relation: a row key and every catalogue column by its name.

Each source kind compiles to a :class:`Part` (its ``SELECT``, the tables and columns it needs,
and checks to run first); :func:`compile_relation` joins the parts of a node's sources with
``UNION ALL``. The relation holds raw values: :mod:`securecalc.sources.typed` validates them
and turns them into catalogue values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from securecalc.core.schema import Schema
from securecalc.sources.declarations import (
    FhirSource,
    FileSource,
    OmopSource,
    PostgresConnection,
    PostgresSource,
    Source,
)
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


def _engine(source: Source) -> Engine:
    if isinstance(source, PostgresSource):
        return Engine("postgres", postgres=source.connection)
    if isinstance(source, OmopSource):
        if source.postgres is not None:
            return Engine("postgres", postgres=source.postgres)
        return Engine("duckdb", duckdb_path=str(source.duckdb))
    return Engine("duckdb")


def compile_relation(sources: Sequence[Source], catalogue: Schema) -> Relation:
    """The relation of ``sources`` exposing ``catalogue``'s columns.

    All sources must run on one engine: any number of file and FHIR sources (in-memory
    DuckDB), or sources on one PostgreSQL server, or one OMOP source in a DuckDB file.
    """
    from securecalc.sources.fhir import fhir_part
    from securecalc.sources.omop import omop_part
    from securecalc.sources.plain import file_part, postgres_part

    if not sources:
        raise ValueError("a node needs at least one source")
    engines = [_engine(s) for s in sources]
    first = engines[0]
    for source, engine in zip(sources[1:], engines[1:], strict=True):
        same = engine.dialect == first.dialect and engine.duckdb_path == first.duckdb_path and (
            engine.postgres is None or first.postgres is None
            or engine.postgres.same_server(first.postgres))
        if not same or engine.duckdb_path is not None:
            raise SourceError(source.name, "all sources of a node must be read by one engine: "
                              "files and FHIR folders together, or tables of one PostgreSQL "
                              "server, or a single OMOP DuckDB file")
    parts = []
    for source in sources:
        if isinstance(source, FileSource):
            parts.append(file_part(source, catalogue))
        elif isinstance(source, PostgresSource):
            parts.append(postgres_part(source, catalogue))
        elif isinstance(source, OmopSource):
            parts.append(omop_part(source, catalogue))
        else:
            assert isinstance(source, FhirSource)
            parts.append(fhir_part(source, catalogue))
    return Relation(first, tuple(parts), tuple(catalogue.names()))


__all__ = ["ROW", "SOURCE", "Engine", "Part", "Presence", "Probe", "Relation",
           "check_definitions", "compile_relation", "select_list"]
