"""Data of the sources sweep: one site's bench columns as a Parquet file written in chunks
(never all rows in memory), cached by size and seed, and the same rows copied into a
PostgreSQL table.

The columns are those of :mod:`securecalc_bench.datasets` (what the five-analysis bench study
reads); chunk ``k`` draws from its own stream ``(seed, 0, k)``, so a file is reproducible.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from securecalc_bench.datasets import PREDICTORS, generate_site

CHUNK_ROWS = 1_000_000
TABLE = "bench_rows"


def chunk_table(rows: int, rng: np.random.Generator) -> pa.Table:
    """``rows`` rows of the bench columns (site 0's distribution)."""
    return pa.table(generate_site(0, rows, rng))


def parquet_path(folder: Path, rows: int, seed: int) -> Path:
    return Path(folder) / f"rows-{rows}-seed-{seed}.parquet"


def write_parquet(folder: Path, rows: int, *, seed: int = 0,
                  chunk_rows: int = CHUNK_ROWS) -> Path:
    """The cached file of ``rows`` rows (written first, chunk by chunk, one row group per
    chunk, when missing or of another size)."""
    path = parquet_path(folder, rows, seed)
    if path.is_file() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    try:
        for k, start in enumerate(range(0, rows, chunk_rows)):
            table = chunk_table(min(chunk_rows, rows - start), np.random.default_rng([seed, 0, k]))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=chunk_rows)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return path


def create_table_sql(table: str = TABLE) -> str:
    floats = ", ".join(f"{name} double precision" for name in ("value", *PREDICTORS, "y"))
    return (f"CREATE TABLE {table} ({floats}, time bigint, event bigint, cat_a text, "
            "cat_b text)")


def load_postgres(conn: psycopg.Connection, parquet: Path, table: str = TABLE) -> int:
    """Copy the Parquet file's rows into a new ``table`` (COPY in CSV batches), then ANALYZE;
    the number of rows copied."""
    copied = 0
    with conn.cursor() as cur:
        cur.execute(create_table_sql(table))
        with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in pq.ParquetFile(parquet).iter_batches(batch_size=200_000):
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
                copy.write(buffer.getvalue())
                copied += batch.num_rows
    conn.commit()
    with conn.cursor() as cur:
        cur.execute(f"ANALYZE {table}")
    conn.commit()
    return copied


__all__ = ["CHUNK_ROWS", "TABLE", "chunk_table", "create_table_sql", "load_postgres",
           "parquet_path", "write_parquet"]
