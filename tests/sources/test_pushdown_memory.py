"""Node memory does not grow with rows when statistics are pushed down: two million Parquet
rows aggregated for five analyses with a Python heap peak far below the rows' own size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import duckdb

from securecalc.core.kinds import StudyOptions, kind_of
from securecalc.core.study_model import parse_analyses
from securecalc.core.where import parse_where
from securecalc.sources import open_sources, parse_sources
from securecalc.sources.pushdown import pushdown_values
from securecalc.synth import synth_schema

ROWS = 2_000_000
#: one float64 column of the rows alone would take 16 MB
HEAP_LIMIT = 4 * 2**20


def test_two_million_rows_in_bounded_python_memory(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    with duckdb.connect() as conn:
        conn.execute(f"""COPY (SELECT (18 + (i * 7919) % 78)::BIGINT AS age,
            CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
            15 + ((i * 104729) % 450001) / 10000.0 AS bmi,
            (80 + (i * 31) % 141)::BIGINT AS sbp, 2 + ((i * 7) % 100001) / 10000.0 AS cholesterol,
            CASE WHEN i % 5 = 0 THEN 'yes' ELSE 'no' END AS diabetes,
            CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END AS arm,
            (1 + (i * 13) % 3650)::BIGINT AS followup_days, (i % 4 = 0)::BIGINT AS event
            FROM range({ROWS}) AS t(i)) TO '{path}' (FORMAT parquet)""")
    schema = synth_schema()
    where = "age >= 30 and sex in ['F']"
    raws = [{"kind": "mean", "column": "bmi"}, {"kind": "variance", "column": "cholesterol"},
            {"kind": "linreg", "y": "sbp", "x": ["age", "bmi", "sex"]},
            {"kind": "crosstab", "row": "arm", "col": "diabetes"},
            {"kind": "median", "column": "followup_days"}]
    analyses = parse_analyses([{"id": f"a{i}", "where": where, **raw}
                               for i, raw in enumerate(raws)], schema)
    predicate = parse_where(where, schema)
    sources = parse_sources([{"kind": "file", "name": "f", "format": "parquet",
                              "path": str(path)}])
    with open_sources(sources, schema) as reader:
        tracemalloc.start()
        try:
            values = [pushdown_values(reader, query, predicate) for a in analyses
                      if (query := kind_of(a.kind).local_query(a, schema, StudyOptions()))]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(values) == len(analyses)
    assert values[0][0] > ROWS // 4  # n of the mean: the filter keeps many rows
    assert peak < HEAP_LIMIT, f"Python heap peak {peak / 2**20:.1f} MiB"
