"""File sources (CSV with its delimiter, Parquet, NDJSON) read through DuckDB: the same rows
as load_table, every catalogue violation found in SQL, and errors without values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pytest

from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.core.table import Table, load_table
from securecalc.sources import CheckReport, Source, SourceError, open_sources, parse_sources
from securecalc.sources.sql import ident, param, sql
from securecalc.synth import synth_schema, write_cohort
from tests.sources.conftest import Cohort
from tests.sources.rows import assert_same_rows


def file_source(path: Path, fmt: str, **extra: object) -> list[Source]:
    raw = {"kind": "file", "name": "registry", "format": fmt, "path": str(path), **extra}
    if fmt == "csv":
        raw.setdefault("delimiter", ",")
    return parse_sources([raw])


def read(sources: Sequence[Source], catalogue: Schema | None = None,
         batch_rows: int = 1000) -> tuple[CheckReport, Table]:
    with open_sources(sources, catalogue or synth_schema()) as reader:
        report = reader.validate()
        return report, reader.table(batch_rows=batch_rows)


def test_csv_with_declared_delimiter_parquet_and_ndjson_give_load_tables_rows(
        cohort: Cohort, tmp_path: Path) -> None:
    expected = load_table(cohort.csv, synth_schema())
    semicolon = tmp_path / "registry.csv"
    semicolon.write_text(cohort.csv.read_text().replace(",", ";"))
    parquet = write_cohort(tmp_path, sites=3, rows=expected.n_rows, seed=11, fmt="parquet")[2]
    ndjson = tmp_path / "registry.ndjson"
    with duckdb.connect() as conn:
        conn.execute(f"COPY (SELECT * FROM read_csv('{cohort.csv}', all_varchar = true)) "
                     f"TO '{ndjson}' (FORMAT json)")
    for sources in (file_source(semicolon, "csv", delimiter=";"),
                    file_source(parquet, "parquet"), file_source(ndjson, "ndjson")):
        report, table = read(sources, batch_rows=97)  # several batches
        assert report.rows == {"registry": expected.n_rows}
        assert_same_rows(table, expected)


def test_columns_rename_and_sources_are_stacked(cohort: Cohort, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(cohort.csv.read_text().replace("followup_days", "fu"))
    sources = parse_sources([
        {"kind": "file", "name": "a", "format": "csv", "delimiter": ",", "path": str(cohort.csv)},
        {"kind": "file", "name": "b", "format": "csv", "delimiter": ",", "path": str(renamed),
         "columns": {"followup_days": "fu"}},
    ])
    report, table = read(sources)
    n = load_table(cohort.csv, synth_schema()).n_rows
    assert report.rows == {"a": n, "b": n} and table.n_rows == 2 * n


def test_aggregates_run_in_sql_over_the_typed_rows(cohort: Cohort) -> None:
    catalogue = synth_schema()
    table = load_table(cohort.csv, catalogue)
    with open_sources(file_source(cohort.csv, "csv"), catalogue) as reader:
        count, total, squares = reader.aggregate(
            [sql("count(*)"), sql("sum(") + ident("sbp") + sql(")"),
             sql("sum(") + ident("bmi") + sql(" * ") + ident("bmi") + sql(")")],
            where=ident("diabetes") + sql(" = ") + param(1))  # code of "yes"
    yes = table.column("diabetes").values == 1
    bmi = table.column("bmi").values[yes]
    assert count == yes.sum()
    assert total == table.column("sbp").values[yes].sum()
    assert squares == pytest.approx(np.nansum(bmi * bmi), rel=1e-12)


CATALOGUE = schema_from_mapping({"age": {"type": "int", "min": 18, "max": 95},
                                 "weight": {"type": "float", "min": 30.0, "max": 250.0},
                                 "sex": {"type": "category", "levels": ["F", "M"]}})
BAD_CSV = "age,weight,sex\n30,70.5,F\n200,80,M\nabc,NaN,F\n40,,X\n41.5,90,F\n,55,M\n"


def test_every_violation_is_counted_and_the_error_carries_no_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    with open_sources(file_source(path, "csv"), CATALOGUE) as reader:
        report = reader.check()
        assert report.rows == {"registry": 6}
        assert report.missing == {"age": 1, "weight": 2, "sex": 0}
        found = {(v.column, v.reason.split(" ")[4], v.rows, v.first_row)
                 for v in report.violations}
        assert found == {("age", "numbers", 1, "row 3"), ("age", "whole", 1, "row 5"),
                         ("age", "bounds", 1, "row 2"), ("sex", "declared", 1, "row 4")}
        with pytest.raises(SourceError) as info:
            reader.validate()
    error = info.value
    assert error.source == "registry" and error.column in ("age", "sex")
    public = str(error)
    assert public.startswith("source 'registry', column ")
    for leak in ("200", "abc", "41.5", "'X'", "row", " 1 "):
        assert leak not in public
    assert "row" in error.local_message()


def test_valid_rows_load_with_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("age,weight,sex\n30,70.5,F\n,NaN,\n95,,M\n")
    _, table = read(file_source(path, "csv"), CATALOGUE)
    assert table.column("age").values.tolist() == [30, 0, 95]
    assert table.column("age").missing.tolist() == [False, True, False]
    assert np.isnan(table.column("weight").values[1:]).all()
    assert table.column("sex").values.tolist() == [0, -1, 1]


def test_missing_file_and_missing_column_name_the_source_and_column(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source 'registry'.*cannot read file gone.csv"):
        read(file_source(tmp_path / "gone.csv", "csv"), CATALOGUE)
    path = tmp_path / "ok.csv"
    path.write_text("age,weight,sex\n30,70.5,F\n")
    with pytest.raises(SourceError) as info:
        read(file_source(path, "csv", columns={"weight": "weight_kg"}), CATALOGUE)
    assert info.value.column == "weight"
    assert "has no column 'weight_kg'" in str(info.value)


def test_node_check_lines_show_counts_and_the_first_offending_row(tmp_path: Path) -> None:
    from securecalc.sources.node import check_lines, check_sources, validated_table

    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    sources = file_source(path, "csv")
    lines = check_lines("hospital-a", CATALOGUE, check_sources(sources, CATALOGUE))
    assert lines[0] == "6 rows (registry: 6) do NOT fit the catalogue of hospital-a"
    assert lines[2].split() == ["age", "int", "1", "[18,", "95]"]
    assert any("values outside the declared bounds" in line and "first at row 2" in line
               for line in lines)
    with pytest.raises(SourceError):
        validated_table(sources, CATALOGUE)
    path.write_text("age,weight,sex\n30,70.5,F\n")
    assert validated_table(sources, CATALOGUE, ["sex"]).names == ("sex",)
