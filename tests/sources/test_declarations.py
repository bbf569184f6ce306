"""Parsing [[source]] tables: every kind, and refusals that name the field."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from securecalc.core.readonly_sql import check_select_only
from securecalc.core.source_model import (
    FhirSource,
    FileSource,
    OmopHasCondition,
    OmopSource,
    PostgresSource,
    parse_sources,
)
from securecalc.errors import ConfigError

NODE_TOML = """
[[source]]
name = "registry"
kind = "file"
format = "csv"
delimiter = ";"
path = "data/registry.csv"
columns = { age = "age_years" }

[[source]]
name = "warehouse"
kind = "postgres"
host = "db.hospital.example"
database = "research"
user = "securecalc_reader"
password_file = "secrets/pg-password"
schema = "study"
view = "cohort_v"

[[source]]
name = "cdm"
kind = "omop"
schema = "cdm"
index = 2020-01-01
postgres = { host = "db", database = "omop", user = "reader", password_env = "PGPASS" }
[source.columns.age]
omop = "age_at_index"
[source.columns.diabetes]
omop = "has_condition"
concept_ids = [201826]
levels = { true = "yes", false = "no" }

[[source]]
name = "bulk"
kind = "fhir"
path = "/exports/2026-01"
[source.columns.sex]
fhir = "sex"
levels = { female = "F", male = "M" }
"""


def test_every_kind_parses_and_paths_resolve_against_node_toml() -> None:
    file, pg, omop, fhir = parse_sources(tomllib.loads(NODE_TOML)["source"],
                                         path="/etc/securecalc/node.toml")
    assert isinstance(file, FileSource) and file.delimiter == ";"
    assert file.path == Path("/etc/securecalc/data/registry.csv")
    assert file.columns == {"age": "age_years"}
    assert isinstance(pg, PostgresSource) and pg.view == "cohort_v" and pg.schema_ == "study"
    assert pg.password_file == Path("/etc/securecalc/secrets/pg-password")
    assert isinstance(omop, OmopSource) and omop.index == dt.date(2020, 1, 1)
    assert isinstance(omop.columns["diabetes"], OmopHasCondition)
    assert omop.postgres is not None and omop.postgres.password_env == "PGPASS"
    assert isinstance(fhir, FhirSource) and fhir.index == "first_encounter_start"


PG = {"kind": "postgres", "name": "w", "host": "h", "database": "d", "user": "u"}


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({**PG, "password": "secret", "table": "t"}, "source[0]", "must not be written"),
    ({**PG, "table": "t", "query": "SELECT 1"}, "source[0]", "exactly one of"),
    ({**PG}, "source[0]", "exactly one of"),
    ({**PG, "query": "DELETE FROM t"}, "source[0].query", "SELECT"),
    ({**PG, "table": "t", "port": 0}, "source[0].port", "greater than"),
    ({**PG, "table": "t", "colour": "red"}, "source[0].colour", "not permitted"),
    ({"kind": "file", "name": "f", "format": "csv", "path": "x"}, "source[0]", "delimiter"),
    ({"kind": "file", "name": "f", "format": "parquet", "path": "x", "delimiter": ","},
     "source[0]", "only a csv"),
    ({"kind": "omop", "name": "o", "columns": {"a": {"omop": "age_at_index"}}}, "source[0]",
     "exactly one of duckdb"),
    ({"kind": "omop", "name": "o", "duckdb": "x", "columns": {
        "sex": {"omop": "sex", "levels": {"male": "M"}}}}, "source[0].columns.sex.levels",
     "concept ids"),
    ({"kind": "omop", "name": "o", "duckdb": "x", "columns": {
        "d": {"omop": "has_condition", "concept_ids": []}}}, "source[0].columns.d.concept_ids",
     "at least 1"),
    ({"kind": "fhir", "name": "b", "path": "x", "columns": {
        "v": {"fhir": "last_observation_value", "system": "s", "code": "c",
              "value_path": "value'); DROP"}}}, "source[0].columns.v.value_path", "pattern"),
    ({"kind": "nosql", "name": "n"}, "source[0]", "does not match"),
])
def test_refusals_name_the_field(raw: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sources([raw], path="node.toml")
    assert info.value.field == field
    assert words in str(info.value)


def test_source_names_are_distinct() -> None:
    raw = {"kind": "file", "name": "f", "format": "parquet", "path": "x.parquet"}
    with pytest.raises(ConfigError, match="distinct"):
        parse_sources([raw, raw])


@pytest.mark.parametrize("query", [
    "SELECT * FROM t", "select a from t;", "WITH x AS (SELECT 1) SELECT * FROM x",
    "-- comment; with a semicolon\nSELECT ';' AS s, \"a;b\" FROM t /* ; */",
    "SELECT $$;$$ AS dollar, $tag$ ' $tag$ AS tagged",
])
def test_select_statements_pass(query: str) -> None:
    check_select_only(query)


@pytest.mark.parametrize("query", [
    "DELETE FROM t", "SELECT 1; DROP TABLE t", "SELECT 1; SELECT 2", "UPDATE t SET a = 1",
    "SELECT * INTO t2 FROM t", "COPY t TO '/tmp/x'", "SELECT 'unterminated", "/* open",
    "SELECT 1; -- trailing; SELECT 2\n; DELETE FROM t", "",
])
def test_other_statements_are_refused(query: str) -> None:
    with pytest.raises(ValueError):
        check_select_only(query)
