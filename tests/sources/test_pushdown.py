"""Local statistics computed by the database equal the NumPy path's exactly (==), for every
kind, on DuckDB (CSV and Parquet) and a real PostgreSQL, with filters; filter values and
column names cannot inject SQL."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from securecalc.core.analyses import Analysis
from securecalc.core.job import Job
from securecalc.core.kinds import StudyOptions, kind_of
from securecalc.core.local import local_contributions
from securecalc.core.local_stats import evaluate
from securecalc.core.schema import Column, Schema
from securecalc.core.study_model import parse_analyses
from securecalc.core.table import Table, load_table
from securecalc.core.where import parse_where
from securecalc.sources import open_sources, parse_sources
from securecalc.sources.pushdown import SourceData, pushdown_values
from securecalc.sources.reader import SourceReader
from securecalc.sources.where_sql import where_sql
from securecalc.synth import synth_schema, write_cohort
from tests.sources.conftest import Cohort

STUDY = StudyOptions()
FILTERS = [
    None,
    "age >= 40 and sex == 'F'",
    "not (arm == 'a' or bmi < 25.5) and diabetes in ['yes']",
    "cholesterol != 5.25 or age not in [50, 51, 52]",
    "bmi > 30",  # missing bmi is UNKNOWN: excluded
]
ANALYSES: list[dict[str, Any]] = [
    {"kind": "count"},
    {"kind": "count", "column": "bmi"},
    {"kind": "sum", "column": "event"},
    {"kind": "mean", "column": "bmi"},
    {"kind": "variance", "column": "cholesterol"},
    {"kind": "std", "column": "age"},
    {"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a", "b"]},
    {"kind": "ttest", "column": "bmi", "group": "sex", "levels": ["M", "F"]},
    {"kind": "correlation", "columns": ["age", "bmi", "cholesterol", "event"]},
    {"kind": "covariance", "columns": ["sbp", "cholesterol"]},
    {"kind": "linreg", "y": "sbp", "x": ["age", "bmi", "sex", "diabetes"]},
    {"kind": "histogram", "column": "bmi", "edges": [15, 20, 25.5, 30, 60]},
    {"kind": "histogram", "column": "age", "edges": [18, 40, 65, 95]},
    {"kind": "crosstab", "row": "arm", "col": "diabetes"},
    {"kind": "logrank", "time": "followup_days", "event": "event", "group": "arm",
     "grid": [30, 180, 365, 730, 1825, 3650]},
    {"kind": "kaplan_meier", "time": "followup_days", "event": "event",
     "grid": [100, 1000, 3650]},
    {"kind": "kaplan_meier", "time": "followup_days", "event": "event", "group": "sex",
     "grid": [*(t + 0.5 for t in range(5, 3640, 9)), 3650.0]},  # a binary search in SQL
    {"kind": "histogram", "column": "bmi", "edges": [15 + 0.15 * i for i in range(301)]},
    {"kind": "quantiles", "column": "bmi", "probs": [0.25, 0.5, 0.75]},
    {"kind": "median", "column": "followup_days", "resolution": 7},
    {"kind": "max", "column": "cholesterol", "resolution": 0.013},
]


def analyses(where: str | None, schema: Schema) -> tuple[Analysis, ...]:
    raws = [{"id": f"a{i}", **raw, **({"where": where} if where else {})}
            for i, raw in enumerate(ANALYSES)]
    return parse_analyses(raws, schema)


def assert_pushdown_equals_numpy(reader: SourceReader, table: Table, schema: Schema) -> None:
    checked = 0
    for where in FILTERS:
        predicate = parse_where(where, schema)
        mask = predicate.evaluate(table)
        for analysis in analyses(where, schema):
            kind = kind_of(analysis.kind)
            query = kind.local_query(analysis, schema, STUDY)
            if query is None:
                continue
            expected = evaluate(query, table, mask)
            actual = pushdown_values(reader, query, predicate)
            assert actual == expected, (analysis.kind, where)
            local = kind.assemble(analysis, schema, query, actual)
            reference = kind.local(analysis, schema, table, mask, STUDY)
            if isinstance(reference, np.ndarray):
                np.testing.assert_array_equal(local, reference)
            else:
                assert local == reference, (analysis.kind, where)
            checked += 1
    assert checked == len(FILTERS) * len(ANALYSES)


@pytest.fixture(scope="module")
def table(cohort: Cohort) -> Table:
    return load_table(cohort.csv, synth_schema())


def file_reader(path: Path, fmt: str, schema: Schema | None = None) -> SourceReader:
    raw: dict[str, Any] = {"kind": "file", "name": "registry", "format": fmt, "path": str(path)}
    if fmt == "csv":
        raw["delimiter"] = ","
    return open_sources(parse_sources([raw]), schema or synth_schema())


def test_duckdb_csv_and_parquet_equal_numpy(cohort: Cohort, table: Table,
                                            tmp_path: Path) -> None:
    parquet = write_cohort(tmp_path, sites=3, rows=400, seed=11, fmt="parquet")[2]
    assert load_table(parquet, synth_schema()).n_rows == table.n_rows
    for path, fmt in ((cohort.csv, "csv"), (parquet, "parquet")):
        with file_reader(path, fmt) as reader:
            reader.validate()
            assert_pushdown_equals_numpy(reader, table, synth_schema())


def test_a_jobs_contributions_from_a_source_equal_those_from_its_rows(
        cohort: Cohort, table: Table) -> None:
    """All analyses of a job in one scan (plus a grouped query per histogram), and logreg,
    which needs the rows, read from the source: the same inputs as from the loaded table."""
    schema = synth_schema()
    raws = [*ANALYSES, {"kind": "logreg", "y": "event", "x": ["age", "sex"]}]
    job = Job("s", "j", (), schema, parse_analyses(
        [{"id": f"a{i}", "where": FILTERS[i % len(FILTERS)], **raw} if FILTERS[i % len(FILTERS)]
         else {"id": f"a{i}", **raw} for i, raw in enumerate(raws)], schema))
    with file_reader(cohort.csv, "csv") as reader:
        from_source = local_contributions(job, SourceData(reader), "mpc")
    from_table = local_contributions(job, table, "mpc")
    for a, b in zip(from_source, from_table, strict=True):
        if isinstance(b.local, np.ndarray):
            np.testing.assert_array_equal(a.local, b.local)
        elif isinstance(b.local, dict):  # logreg: the design matrix and level counts
            np.testing.assert_array_equal(a.local["X"], b.local["X"])
            np.testing.assert_array_equal(a.local["y"], b.local["y"])
            assert a.local["levels"] == b.local["levels"]
        else:
            assert a.local == b.local, a.analysis.kind


@pytest.mark.usefixtures("pg_password")
def test_postgresql_equals_numpy(pg_database: dict[str, Any], table: Table) -> None:
    sources = parse_sources([{"kind": "postgres", "name": "warehouse", **pg_database,
                              "table": "cohort"}])
    with open_sources(sources, synth_schema()) as reader:
        reader.validate()
        assert_pushdown_equals_numpy(reader, table, synth_schema())


# --------------------------------------------------------------------------- edge values


@pytest.fixture()
def edge_rows(tmp_path: Path) -> Iterator[tuple[Path, Schema]]:
    """Values where rounding rules differ: exact halves of the fixed-point step, values far
    from the centre, the declared bounds, negative numbers, a quoted column name."""
    name = 'x"); DROP TABLE t; --'
    schema = Schema({name: Column(name, "float", min=-1e6, max=1e6),
                     "k": Column("k", "int", min=-2**40, max=2**40),
                     "g": Column("g", "category", levels=("it's", INJECT, "z"))})
    bits = 41  # fraction_bits of [-1e6, 1e6]
    half = 2.0 ** -(bits + 1)
    xs = [0.5 * 2.0 ** -bits, -half, 3 * half, -3 * half, 1e6, -1e6, 1000.0001234, -999999.5,
          0.1, None, 123456.789, 2.5, -2.5]
    rows = len(xs)
    ks = [2**40, -2**40, 7, -7, 0, 1, None, 2**39 + 3, -5, 9, 11, 2**40 - 1, -(2**40) + 1]
    gs = ["it's", INJECT, "z", None, "z", "it's", "z", INJECT, "z", "z", "it's", None, "z"]
    assert len(ks) == len(gs) == rows
    path = tmp_path / "edge.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([name, "k", "g"])
        for x, k, g in zip(xs, ks, gs, strict=True):
            writer.writerow(["" if x is None else repr(x), "" if k is None else k,
                             "" if g is None else g])
    yield path, schema


#: a level that would end a quoted SQL string and write, were it pasted
INJECT = "o\"k'); DROP TABLE edge; --"
_QUOTED = "'" + INJECT.replace("\\", "\\\\").replace("'", "\\'") + "'"
EDGE_FILTERS = [None, f"g == 'it\\'s' or g == {_QUOTED}", "g not in ['z']", "not (g == 'z')",
                f"g in [{_QUOTED}, 'z']"]


def edge_analyses(schema: Schema, where: str | None) -> list[Analysis]:
    name = next(iter(schema.names()))
    raws = [
        {"kind": "variance", "column": name},
        {"kind": "variance", "column": "k"},
        {"kind": "covariance", "columns": [name, "k"]},
        {"kind": "ttest", "column": name, "group": "g", "levels": ["it's", "z"]},
        {"kind": "histogram", "column": name, "edges": [-1e6, -0.5, 0, 2.5, 1e6]},
        {"kind": "quantiles", "column": "k", "probs": [0.5], "resolution": 1024},
    ]
    return list(parse_analyses([{"id": f"e{i}", **raw, **({"where": where} if where else {})}
                                for i, raw in enumerate(raws)], schema))


def assert_edges_exact(reader: SourceReader, table: Table, schema: Schema) -> None:
    name = next(iter(schema.names()))
    for where in [*EDGE_FILTERS, f"`{name}` > -1 or k < 0"]:
        predicate = parse_where(where, schema)
        text, _ = where_sql(predicate).render(reader.relation.dialect)
        assert "it's" not in text and INJECT not in text  # values are bound parameters
        mask = predicate.evaluate(table)
        for analysis in edge_analyses(schema, where):
            query = kind_of(analysis.kind).local_query(analysis, schema, STUDY)
            assert query is not None
            assert pushdown_values(reader, query, predicate) == evaluate(query, table, mask), (
                analysis.kind, where)


def test_edge_values_and_injection_attempts_are_exact_and_bound(
        edge_rows: tuple[Path, Schema]) -> None:
    path, schema = edge_rows
    table = load_table(path, schema)
    with file_reader(path, "csv", schema) as reader:
        reader.validate()
        assert_edges_exact(reader, table, schema)
    assert path.read_text().count("\n") == 14  # the file is untouched


@pytest.mark.usefixtures("pg_password")
def test_edge_values_and_injection_attempts_on_postgresql(
        edge_rows: tuple[Path, Schema], postgres: Any, pg_database: dict[str, Any]) -> None:
    from psycopg import sql as pgsql

    from tests.sources.conftest import READER

    path, schema = edge_rows
    name = next(iter(schema.names()))
    with postgres.connect("research", autocommit=False) as conn, conn.cursor() as cur:
        cur.execute(pgsql.SQL("CREATE TABLE public.edge ({} double precision, k bigint, g text)")
                    .format(pgsql.Identifier(name)))
        with path.open("rb") as f, cur.copy(
                "COPY public.edge FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(f.read())
        cur.execute(pgsql.SQL("GRANT SELECT ON public.edge TO {}").format(
            pgsql.Identifier(READER)))
        conn.commit()
    sources = parse_sources([{"kind": "postgres", "name": "warehouse", **pg_database,
                              "table": "edge"}])
    with open_sources(sources, schema) as reader:
        reader.validate()
        assert_edges_exact(reader, load_table(path, schema), schema)
        assert reader.row_counts() == {"warehouse": 13}  # nothing dropped or written
