"""What a node does with its sources: open them, check every value against the catalogue in
SQL, count rows, read the rows as a :class:`~securecalc.core.table.Table` in bounded batches,
and run aggregate queries over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from securecalc.core.schema import Schema
from securecalc.core.source_model import Source
from securecalc.core.table import ColumnData, Table
from securecalc.sources.compiler import compile_relation
from securecalc.sources.connection import Connection, connect
from securecalc.sources.errors import SourceError
from securecalc.sources.relation import ROW, SOURCE, Relation
from securecalc.sources.sql import Sql, ident, join, sql
from securecalc.sources.typed import aggregate_select, missing, typed_select, violations

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Violation:
    """Rows of one column that break the catalogue, for the node's own log."""

    source: str
    column: str
    reason: str
    rows: int
    first_row: str

    def error(self) -> SourceError:
        """The public error (no count, no row) with this violation as its local detail."""
        return SourceError(self.source, self.reason, column=self.column,
                           detail=f"{self.rows} rows; first at {self.first_row}")


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :meth:`SourceReader.check`: row counts per source, missing values per
    column, and violations (for the node's own output: these are counts)."""

    rows: dict[str, int]
    missing: dict[str, int]
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


class SourceReader:
    """The node's sources, compiled to one relation over one open connection."""

    def __init__(self, sources: Sequence[Source], catalogue: Schema):
        self.catalogue = catalogue
        self.relation: Relation = compile_relation(sources, catalogue)
        self._db: Connection = connect(self.relation.engine, self.relation.sources[0])

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------- running queries

    def _run(self, query: Sql, source: str, column: str | None = None) -> list[tuple[Any, ...]]:
        try:
            return self._db.rows(query)
        except SourceError:
            raise
        except Exception as exc:  # the database's text may quote values: local detail only
            raise SourceError(source, "the database refused the source's query",
                              column=column, detail=f"{type(exc).__name__}: {exc}") from None

    def probe(self) -> None:
        """Check that every table, file and column the sources need exists."""
        for part in self.relation.parts:
            for probe in part.probes:
                query = sql("SELECT * FROM ") + probe.relation + sql(" AS q LIMIT 0")
                try:
                    have = set(self._db.columns(query))
                except Exception as exc:
                    needing = sorted({c for cols in probe.columns.values() for c in cols})
                    raise SourceError(part.source, f"cannot read {probe.what}",
                                      column=needing[0] if len(needing) == 1 else None,
                                      detail=f"{type(exc).__name__}: {exc}") from None
                for column, needed_by in probe.columns.items():
                    if column not in have:
                        raise SourceError(part.source, f"{probe.what} has no column {column!r}",
                                          column=needed_by[0] if needed_by else None)
            for presence in part.presence:
                if not self._run(presence.query, part.source, presence.column)[0][0]:
                    raise SourceError(part.source, presence.reason, column=presence.column)

    def row_counts(self) -> dict[str, int]:
        """Rows per source."""
        query = (sql(f"SELECT {SOURCE}, count(*) FROM (") + self.relation.select(keyed=True)
                 + sql(f") AS r GROUP BY {SOURCE}"))
        counts = dict(self._run(query, self.relation.sources[0]))
        return {source: int(counts.get(source, 0)) for source in self.relation.sources}

    def check(self) -> CheckReport:
        """Probe the sources, then count missing values and every catalogue violation in
        one scan; locate the first offending row of each violation."""
        self.probe()
        dialect = self.relation.dialect
        raw = {c.name: sql("r.") + ident(c.name) for c in self.catalogue}
        checks = [(column.name, reason, condition) for column in self.catalogue
                  for reason, condition in violations(column, raw[column.name], dialect)]
        conditions = [missing(c, raw[c.name], dialect) for c in self.catalogue]
        conditions += [condition for _, _, condition in checks]
        keyed = self.relation.select(keyed=True)
        counts = [sql("count(*) FILTER (WHERE ") + cond + sql(")") for cond in conditions]
        query = (sql("SELECT ") + join(", ", counts or [sql("0")]) + sql(" FROM (") + keyed
                 + sql(") AS r"))
        found = self._run(query, self.relation.sources[0])[0]
        n_columns = len(self.catalogue.names())
        missing_counts = {name: int(n) for name, n in zip(self.catalogue.names(),
                                                           found[:n_columns], strict=True)}
        out = []
        for (column, reason, condition), n in zip(checks, found[n_columns:], strict=True):
            if n:
                text = "VARCHAR" if dialect == "duckdb" else "text"
                where = (sql(f"SELECT {SOURCE}, CAST({ROW} AS {text}) FROM (") + keyed
                         + sql(") AS r WHERE ") + condition + sql(f" ORDER BY {ROW} LIMIT 1"))
                source, row = self._run(where, self.relation.sources[0], column)[0]
                out.append(Violation(source, column, reason, int(n),
                                     f"{self._key_name(source)} {row}"))
        return CheckReport(self.row_counts(), missing_counts, tuple(out))

    def _key_name(self, source: str) -> str:
        return next(p.key_name for p in self.relation.parts if p.source == source)

    def validate(self) -> CheckReport:
        """:meth:`check`, raising the first violation as a :class:`SourceError`."""
        report = self.check()
        if report.violations:
            raise report.violations[0].error()
        return report

    # ----------------------------------------------------------------- reading

    def table(self, columns: Sequence[str] | None = None, *,
              batch_rows: int = BATCH_ROWS) -> Table:
        """The typed rows (call :meth:`validate` first), fetched ``batch_rows`` at a time, in
        the order of source and row key (the same rows give the same table)."""
        names = list(self.catalogue.names() if columns is None else dict.fromkeys(columns))
        schema = Schema({name: self.catalogue[name] for name in names})
        if not names:  # a study that reads no column (a count) needs the number of rows
            return Table(schema, {}, sum(self.row_counts().values()))
        query = (sql("SELECT ") + join(", ", (ident(n) for n in names)) + sql(" FROM (")
                 + typed_select(self.relation, self.catalogue, ordered=True) + sql(") AS t"))
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in names}
        try:
            for batch in self._db.batches(query, batch_rows):
                for name in names:
                    parts[name].append(batch[name])
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(self.relation.sources[0], "the database refused the source's "
                              "query", detail=f"{type(exc).__name__}: {exc}") from None
        data = {}
        for name in names:
            column = schema[name]
            dtype = np.float64 if column.type == "float" else np.int64
            chunks = parts[name]
            values = (np.concatenate([c[0] for c in chunks]).astype(dtype, copy=False)
                      if chunks else np.zeros(0, dtype))
            missing = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, bool)
            if column.type == "category":
                values = np.where(missing, -1, values)
            elif column.type == "float":
                values = np.where(missing, np.nan, values)
            values.flags.writeable = False
            missing.flags.writeable = False
            data[name] = ColumnData(values, missing)
        n_rows = len(next(iter(data.values())).values) if data else 0
        return Table(schema, data, n_rows)

    def aggregate(self, aggregates: list[Sql], where: Sql | None = None) -> tuple[Any, ...]:
        """One row of ``aggregates`` over the typed rows that satisfy ``where``."""
        query = aggregate_select(self.relation, self.catalogue, aggregates, where)
        return self._run(query, self.relation.sources[0])[0]


def open_sources(sources: Sequence[Source], catalogue: Schema) -> SourceReader:
    """Compile and connect (raises :class:`SourceError` naming the source at fault)."""
    return SourceReader(sources, catalogue)


__all__ = ["BATCH_ROWS", "CheckReport", "SourceReader", "Violation", "open_sources"]
