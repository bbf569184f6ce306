"""OMOP CDM (DuckDB and PostgreSQL) and FHIR sources give exactly the CSV cohort's rows."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.core.table import Table, load_table
from securecalc.sources import SourceError, open_sources, parse_sources
from securecalc.sources.synthetic import synth_fhir_source, synth_omop_source
from securecalc.synth import synth_schema
from tests.sources.conftest import Cohort
from tests.sources.rows import assert_same_rows


def read(raw: dict[str, Any], catalogue: Schema | None = None) -> tuple[dict[str, int], Table]:
    with open_sources(parse_sources([raw]), catalogue or synth_schema()) as reader:
        report = reader.validate()
        return report.rows, reader.table(batch_rows=128)


def test_omop_in_duckdb_gives_the_csv_rows(cohort: Cohort) -> None:
    rows, table = read(synth_omop_source("cdm", duckdb=cohort.duckdb))
    expected = load_table(cohort.csv, synth_schema())
    assert rows == {"cdm": expected.n_rows}
    assert_same_rows(table, expected)


@pytest.mark.usefixtures("pg_password")
def test_omop_in_postgres_gives_the_csv_rows(cohort: Cohort, pg_database: dict[str, Any]) -> None:
    rows, table = read(synth_omop_source("cdm", postgres=pg_database))
    expected = load_table(cohort.csv, synth_schema())
    assert rows == {"cdm": expected.n_rows}
    assert_same_rows(table, expected)


def test_fhir_export_gives_the_csv_rows(cohort: Cohort) -> None:
    rows, table = read(synth_fhir_source("bulk", cohort.fhir))
    expected = load_table(cohort.csv, synth_schema())
    assert rows == {"bulk": expected.n_rows}
    assert_same_rows(table, expected)


def test_a_declared_index_date_moves_age_and_follow_up(cohort: Cohort) -> None:
    raw = synth_omop_source("cdm", duckdb=cohort.duckdb)
    catalogue = schema_from_mapping({"age": {"type": "int", "min": 0, "max": 200},
                                     "followup_days": {"type": "int", "min": -10**5,
                                                       "max": 10**5}})
    raw["columns"] = {k: v for k, v in raw["columns"].items() if k in catalogue}
    _, at_start = read(raw, catalogue)
    _, later = read({**raw, "index": dt.date(2030, 1, 1)}, catalogue)
    assert (later.column("age").values >= at_start.column("age").values + 11).all()
    assert (later.column("followup_days").values < at_start.column("followup_days").values).all()


def test_a_concept_absent_from_the_data_names_source_and_column(cohort: Cohort) -> None:
    raw = copy.deepcopy(synth_omop_source("cdm", duckdb=cohort.duckdb))
    raw["columns"]["diabetes"]["concept_ids"] = [4_000_000_001 % 2**31]
    with pytest.raises(SourceError) as info:
        read(raw)
    assert (info.value.source, info.value.column) == ("cdm", "diabetes")
    assert "condition_occurrence" in str(info.value)
    raw = copy.deepcopy(synth_fhir_source("bulk", cohort.fhir))
    raw["columns"]["bmi"]["code"] = "0000-0"
    with pytest.raises(SourceError) as info:
        read(raw)
    assert (info.value.source, info.value.column) == ("bulk", "bmi")


def test_missing_table_and_undefined_column(cohort: Cohort, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source 'cdm'.*cannot read table person"):
        read({**synth_omop_source("cdm", duckdb=cohort.duckdb), "schema": "elsewhere"})
    raw = copy.deepcopy(synth_omop_source("cdm", duckdb=cohort.duckdb))
    del raw["columns"]["bmi"]
    with pytest.raises(SourceError) as info:
        read(raw)
    assert info.value.column == "bmi" and "does not define" in str(info.value)
    (tmp_path / "Patient.ndjson").write_text("")
    with pytest.raises(SourceError, match=r"the export folder has no Condition\*\.ndjson"):
        read(synth_fhir_source("bulk", tmp_path))


def test_values_outside_the_catalogue_bounds_are_found_per_person(cohort: Cohort) -> None:
    narrow = schema_from_mapping({"age": {"type": "int", "min": 18, "max": 60}})
    raw = synth_omop_source("cdm", duckdb=cohort.duckdb)
    raw["columns"] = {"age": raw["columns"]["age"]}
    with open_sources(parse_sources([raw]), narrow) as reader:
        report = reader.check()
        with pytest.raises(SourceError) as info:
            reader.validate()
    (violation,) = report.violations
    expected = load_table(cohort.csv, synth_schema()).column("age").values
    assert violation.rows == int((expected > 60).sum())
    first = int(violation.first_row.removeprefix("person_id "))
    assert expected[first - 1] > 60 and not (expected[: first - 1] > 60).any()
    assert str(info.value) == ("source 'cdm', column 'age': values outside the declared "
                               "bounds [18, 60]")


def test_a_missing_duckdb_file_and_mixed_engines_are_refused(cohort: Cohort,
                                                             tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="^source 'cdm': cannot open the DuckDB database"):
        read(synth_omop_source("cdm", duckdb=tmp_path / "absent.duckdb"))
    mixed = parse_sources([synth_fhir_source("bulk", cohort.fhir),
                           synth_omop_source("cdm", duckdb=cohort.duckdb)])
    with pytest.raises(SourceError, match="^source 'cdm': all sources of a node must be read"):
        open_sources(mixed, synth_schema())
