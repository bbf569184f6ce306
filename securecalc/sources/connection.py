"""Connections that run compiled SQL: DuckDB (in memory or a database file, read only) and
PostgreSQL (psycopg, every transaction READ ONLY).

Database messages may quote values, so they never reach :class:`SourceError`'s public text:
they go to its ``detail`` (the node's own log).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from securecalc.core.source_model import PostgresConnection
from securecalc.sources.errors import SourceError
from securecalc.sources.relation import Engine
from securecalc.sources.sql import Dialect, Sql

#: a node never downloads DuckDB extensions: CSV, Parquet and JSON readers are built in
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": False}

Batch = dict[str, tuple[np.ndarray, np.ndarray]]  #: column -> (values, missing mask)


class Connection(Protocol):
    dialect: Dialect

    def rows(self, query: Sql) -> list[tuple[Any, ...]]: ...

    def columns(self, query: Sql) -> list[str]: ...

    def batches(self, query: Sql, rows: int) -> Iterator[Batch]: ...

    def close(self) -> None: ...


def _numpy(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Values (int64 with 0, or float64 with NaN, where missing) and the missing mask."""
    missing = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        values = np.asarray(array.cast(pa.float64()).fill_null(float("nan")).to_numpy(
            zero_copy_only=False), dtype=np.float64)
    else:
        values = np.asarray(array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
                            dtype=np.int64)
    return values, missing


class DuckDBConnection:
    """An in-memory DuckDB, or a database file opened read only."""

    dialect: Dialect = "duckdb"

    def __init__(self, source: str, path: str | None = None):
        import duckdb

        self.source = source
        try:
            self._db = duckdb.connect(path if path is not None else ":memory:",
                                      read_only=path is not None, config=_DUCKDB_CONFIG)
        except duckdb.Error as exc:
            raise SourceError(source, "cannot open the DuckDB database file",
                              detail=str(exc)) from None

    def _execute(self, query: Sql) -> Any:
        text, params = query.render("duckdb")
        return self._db.execute(text, params)

    def rows(self, query: Sql) -> list[tuple[Any, ...]]:
        return list(self._execute(query).fetchall())

    def columns(self, query: Sql) -> list[str]:
        return [d[0] for d in self._execute(query).description]

    def batches(self, query: Sql, rows: int) -> Iterator[Batch]:
        text, params = query.render("duckdb")
        reader = self._db.sql(text, params=params).to_arrow_reader(rows)
        for batch in reader:
            yield {name: _numpy(batch.column(i)) for i, name in enumerate(batch.schema.names)}

    def close(self) -> None:
        self._db.close()


def postgres_password(connection: PostgresConnection, source: str) -> str | None:
    if connection.password_file is not None:
        try:
            return connection.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise SourceError(source, "cannot read the password_file",
                              detail=str(exc)) from None
    if connection.password_env is not None:
        value = os.environ.get(connection.password_env)
        if value is None:
            raise SourceError(source, f"the environment variable {connection.password_env} "
                              "(password_env) is not set")
        return value
    return None


class PostgresConnectionHandle:
    """A psycopg connection whose transactions are all READ ONLY."""

    dialect: Dialect = "postgres"

    def __init__(self, source: str, connection: PostgresConnection):
        import psycopg

        self.source = source
        password = postgres_password(connection, source)
        try:
            self._db = psycopg.connect(
                host=connection.host, port=connection.port, dbname=connection.database,
                user=connection.user, password=password, sslmode=connection.sslmode,
                connect_timeout=connection.connect_timeout, application_name="securecalc-node")
        except psycopg.OperationalError as exc:
            raise SourceError(source, _connect_reason(str(exc), connection),
                              detail=str(exc).strip()) from None
        self._db.read_only = True
        self._cursors = 0

    def _execute(self, cursor: Any, query: Sql) -> None:
        text, params = query.render("postgres")
        cursor.execute(text, params)

    def rows(self, query: Sql) -> list[tuple[Any, ...]]:
        with self._db.transaction(), self._db.cursor() as cursor:
            self._execute(cursor, query)
            return list(cursor.fetchall())

    def columns(self, query: Sql) -> list[str]:
        with self._db.transaction(), self._db.cursor() as cursor:
            self._execute(cursor, query)
            return [d.name for d in cursor.description or ()]

    def batches(self, query: Sql, rows: int) -> Iterator[Batch]:
        """Rows through a server-side cursor, ``rows`` at a time."""
        self._cursors += 1
        with self._db.transaction():
            self._plan_for_all_rows()
            yield from self._fetch(query, rows)

    def _plan_for_all_rows(self) -> None:
        """Plan the cursor for reading every row (PostgreSQL plans a cursor for its first
        10% by default: nested loops that are quadratic on OMOP's per-person lookups); an
        engine without this setting keeps its own plan."""
        import psycopg

        try:
            with self._db.transaction():  # a savepoint: a refusal leaves the transaction usable
                self._db.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        except psycopg.Error:
            pass

    def _fetch(self, query: Sql, rows: int) -> Iterator[Batch]:
        with self._db.cursor(name=f"securecalc_{self._cursors}") as cur:
            cur.itersize = rows
            self._execute(cur, query)
            names: Sequence[str] | None = None
            while chunk := cur.fetchmany(rows):
                if names is None:
                    names = [d.name for d in cur.description or ()]
                columns = list(zip(*chunk, strict=True))
                yield {name: _numpy(pa.array(list(values), from_pandas=True))
                       for name, values in zip(names, columns, strict=True)}

    def close(self) -> None:
        self._db.close()


def _connect_reason(message: str, connection: PostgresConnection) -> str:
    text = message.lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return f"authentication failed for user {connection.user!r} (wrong password?)"
    if "does not exist" in text and "database" in text:
        return f"the database {connection.database!r} does not exist"
    return (f"cannot reach the PostgreSQL server at {connection.host}:{connection.port}")


def connect(engine: Engine, source: str) -> Connection:
    """Open the engine's connection; ``source`` names the source in errors."""
    if engine.dialect == "postgres":
        assert engine.postgres is not None
        return PostgresConnectionHandle(source, engine.postgres)
    return DuckDBConnection(source, engine.duckdb_path)


__all__ = ["Batch", "Connection", "DuckDBConnection", "PostgresConnectionHandle", "connect",
           "postgres_password"]
