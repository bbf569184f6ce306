"""PostgreSQL sources against a real server: table, view and query give the CSV cohort's
rows; bad connections, missing relations and writes are clear errors naming the source."""

from __future__ import annotations

from typing import Any

import pytest

from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.core.table import Table, load_table
from securecalc.sources import SourceError, open_sources, parse_sources
from securecalc.sources.pgserver import free_port
from securecalc.synth import synth_schema
from tests.sources.conftest import Cohort
from tests.sources.rows import assert_same_rows

pytestmark = pytest.mark.usefixtures("pg_password")


def source(pg: dict[str, Any], **relation: object) -> list[Any]:
    return parse_sources([{"kind": "postgres", "name": "warehouse", **pg, **relation}])


def read(sources: list[Any], catalogue: Schema | None = None) -> tuple[dict[str, int], Table]:
    with open_sources(sources, catalogue or synth_schema()) as reader:
        report = reader.validate()
        return report.rows, reader.table(batch_rows=50)


@pytest.mark.parametrize("relation", [
    {"table": "cohort"}, {"schema": "public", "view": "cohort_view"},
    {"query": "SELECT * FROM public.cohort WHERE age >= 0 -- all rows;\n"},
    {"query": "SELECT * FROM public.cohort; -- ends in a comment"},
])
def test_table_view_and_query_give_the_csv_rows(cohort: Cohort, pg_database: dict[str, Any],
                                                relation: dict[str, Any]) -> None:
    rows, table = read(source(pg_database, **relation))
    expected = load_table(cohort.csv, synth_schema())
    assert rows == {"warehouse": expected.n_rows}
    assert_same_rows(table, expected)


def test_unreachable_server_and_wrong_password(pg_database: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SourceError) as info:
        read(source({**pg_database, "port": free_port(), "connect_timeout": 2}, table="cohort"))
    assert str(info.value).startswith("source 'warehouse': cannot reach the PostgreSQL server")
    monkeypatch.setenv("SECURECALC_TEST_PG_PASSWORD", "not-the-password")
    with pytest.raises(SourceError) as info:
        read(source(pg_database, table="cohort"))
    assert "authentication failed for user 'securecalc_reader'" in str(info.value)
    assert "not-the-password" not in info.value.local_message()
    monkeypatch.delenv("SECURECALC_TEST_PG_PASSWORD")
    with pytest.raises(SourceError, match="SECURECALC_TEST_PG_PASSWORD .* is not set"):
        read(source(pg_database, table="cohort"))


def test_password_file(pg_database: dict[str, Any], tmp_path: Any) -> None:
    from tests.sources.conftest import READER_PASSWORD

    secret = tmp_path / "pg-password"
    secret.write_text(READER_PASSWORD + "\n")
    fields = {k: v for k, v in pg_database.items() if k != "password_env"}
    rows, _ = read(source({**fields, "password_file": str(secret)}, table="cohort"))
    assert rows["warehouse"] > 0


def test_missing_table_and_missing_column(pg_database: dict[str, Any]) -> None:
    with pytest.raises(SourceError, match=r"^source 'warehouse': cannot read table nowhere$"):
        read(source(pg_database, table="nowhere"))
    with pytest.raises(SourceError) as info:
        read(source(pg_database, table="cohort", columns={"bmi": "bmi_kg"}))
    assert info.value.column == "bmi"
    assert str(info.value) == ("source 'warehouse', column 'bmi': table cohort has no column "
                               "'bmi_kg'")


def test_a_query_that_writes_is_refused(pg_database: dict[str, Any]) -> None:
    from securecalc.errors import ConfigError

    with pytest.raises(ConfigError, match="SELECT"):
        source(pg_database, query="DELETE FROM public.cohort")
    sneaky = "WITH gone AS (DELETE FROM public.cohort RETURNING *) SELECT * FROM gone"
    with pytest.raises(SourceError, match="^source 'warehouse': cannot read query$"):
        read(source(pg_database, query=sneaky))  # passes the lexical check, not PostgreSQL
    writes = "SELECT c.*, nextval('public.counter') AS n FROM public.cohort AS c"
    with pytest.raises(SourceError) as info:  # passes both: stopped by READ ONLY
        read(source(pg_database, query=writes))
    assert "read-only transaction" in (info.value.detail or "")
    rows, _ = read(source(pg_database, table="cohort"))
    assert rows["warehouse"] > 0  # nothing was deleted


def test_value_outside_bounds_names_the_column_not_the_value(pg_database: dict[str, Any]) -> None:
    narrow = schema_from_mapping({"sbp": {"type": "int", "min": 80, "max": 150},
                                  "sex": {"type": "category", "levels": ["F"]}})
    with open_sources(source(pg_database, table="cohort"), narrow) as reader:
        report = reader.check()
    assert {(v.column, v.reason) for v in report.violations} == {
        ("sbp", "values outside the declared bounds [80, 150]"),
        ("sex", "values that are not declared levels")}
    assert all(v.first_row.startswith("row ") and v.rows > 0 for v in report.violations)
