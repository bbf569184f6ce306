"""Compile a node's source declarations to one :class:`~securecalc.sources.relation.Relation`."""

from __future__ import annotations

from collections.abc import Sequence

from securecalc.core.schema import Schema
from securecalc.core.source_model import (
    FhirSource,
    FileSource,
    OmopSource,
    PostgresSource,
    Source,
)
from securecalc.sources.errors import SourceError
from securecalc.sources.fhir import fhir_part
from securecalc.sources.omop import omop_part
from securecalc.sources.plain import file_part, postgres_part
from securecalc.sources.relation import Engine, Relation


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


__all__ = ["compile_relation"]
