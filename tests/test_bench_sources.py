"""``securecalc bench --only sources`` at a tiny size: real DuckDB and a real PostgreSQL
server, every measurement and output present (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from securecalc_bench.plain_sql import scalar_sql
from securecalc_bench.scale_data import write_parquet


def test_parquet_is_written_in_row_groups_and_reused(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, 25_000, seed=3, chunk_rows=10_000)
    meta = pq.ParquetFile(path).metadata
    assert (meta.num_rows, meta.num_row_groups) == (25_000, 3)
    written = path.stat().st_mtime_ns
    assert write_parquet(tmp_path, 25_000, seed=3, chunk_rows=10_000) == path
    assert path.stat().st_mtime_ns == written  # cached by size and seed

    # the plain query's count and sums are those of the rows (numpy on the same file)
    rows = pq.read_table(path).to_pydict()
    value, y = np.asarray(rows["value"]), np.asarray(rows["y"])
    with duckdb.connect() as conn:
        got = conn.execute(scalar_sql(f"read_parquet('{path}')")).fetchone()
    assert got is not None
    assert got[0] == 25_000
    assert got[1:3] == pytest.approx([value.sum(), (value * value).sum()], rel=1e-12)
    assert got[-1] == pytest.approx((y * y).sum(), rel=1e-12)  # the last: sum(y * y)


@pytest.mark.timeout(240)
def test_quick_sources_sweep_measures_every_source_and_mode(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    run = subprocess.run([sys.executable, "-m", "securecalc", "bench", "--quick", "--only",
                          "sources", "--out", str(out), "--work", str(work)],
                         capture_output=True, text=True, timeout=230)
    assert run.returncode == 0, run.stderr[-3000:]

    results = json.loads((out / "sources.json").read_text())
    records = results["records"]
    assert all(r["status"] == "ok" for r in records), [r.get("note") for r in records]
    assert {(r["source"], r["mode"]) for r in records} == {
        ("parquet", "node"), ("parquet", "plain"), ("parquet", "legacy"),
        ("postgres", "node"), ("postgres", "plain")}
    for record in records:
        assert record["rss_peak_mb"] > 0 and record["heap_peak_mb"] > 0
        if record["mode"] != "plain":  # the node's rows stay in the database, or not
            assert record["pushed_down"] is (record["mode"] == "node")
    assert results["postgres_loads"]
    assert list((work / "parquet").glob("*.parquet"))
    summary = (out / "sources.md").read_text()
    assert summary.startswith("# securecalc bench: sources sweep")
    assert "| parquet |" in summary and "| postgres |" in summary
