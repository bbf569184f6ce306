"""Plain tables: a file read by DuckDB, or a PostgreSQL table, view or read-only query.

Each catalogue column reads a source column of the same name, or the one ``columns`` names.
"""

from __future__ import annotations

from securecalc.core.readonly_sql import check_select_only
from securecalc.core.schema import Schema
from securecalc.core.source_model import FileSource, PostgresSource
from securecalc.sources.errors import SourceError
from securecalc.sources.relation import Part, Probe, select_list
from securecalc.sources.sql import Sql, ident, param, sql


def _mapping(columns: dict[str, str], catalogue: Schema, source: str) -> dict[str, str]:
    for name in columns:
        if name not in catalogue:
            raise SourceError(source, "the source maps a column the catalogue does not "
                              "declare", column=name)
    return {name: columns.get(name, name) for name in catalogue.names()}


def _part(source: str, base: Sql, what: str, mapping: dict[str, str]) -> Part:
    exprs = {name: sql("q.") + ident(column) for name, column in mapping.items()}
    needed: dict[str, tuple[str, ...]] = {}
    for name, column in mapping.items():
        needed[column] = needed.get(column, ()) + (name,)
    return Part(source=source,
                body=select_list(exprs) + sql(" FROM ") + base + sql(" AS q"),
                key=sql("row_number() OVER ()"),
                probes=(Probe(what, base, needed),))


def file_reader(source: FileSource) -> Sql:
    """DuckDB's table function for the file; path and delimiter are bound parameters."""
    path = param(str(source.path))
    if source.format == "csv":
        return (sql("read_csv(") + path + sql(", delim = ") + param(source.delimiter)
                + sql(", header = true, all_varchar = true, nullstr = ['', 'NA'])"))
    if source.format == "parquet":
        return sql("read_parquet(") + path + sql(")")
    return sql("read_json(") + path + sql(", format = 'newline_delimited')")


def file_part(source: FileSource, catalogue: Schema) -> Part:
    mapping = _mapping(source.columns, catalogue, source.name)
    return _part(source.name, file_reader(source), f"file {source.path.name}", mapping)


def postgres_base(source: PostgresSource) -> tuple[Sql, str]:
    """The table, view or parenthesised query, and how to name it in messages."""
    if source.query is not None:
        # the newline ends a trailing -- comment before the closing parenthesis
        return sql("(") + sql(check_select_only(source.query)) + sql("\n)"), "query"
    name = source.table if source.table is not None else source.view
    assert name is not None
    kind = "table" if source.table is not None else "view"
    qualified = ident(source.schema_, name) if source.schema_ else ident(name)
    return qualified, f"{kind} {name}"


def postgres_part(source: PostgresSource, catalogue: Schema) -> Part:
    base, what = postgres_base(source)
    return _part(source.name, base, what, _mapping(source.columns, catalogue, source.name))


__all__ = ["file_part", "file_reader", "postgres_base", "postgres_part"]
