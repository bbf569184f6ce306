"""``securecalc node check``, ``node describe`` and node start-up on ``[[source]]`` tables,
through the command line: counts for the operator, and for bad input a one-line error naming
the source and the column, exit status 1, and no value in that line."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from securecalc.core.table import load_table
from securecalc.sources.pgserver import free_port
from securecalc.sources.synthetic import synth_fhir_source, synth_omop_source
from securecalc.synth import SYNTH_CATALOGUE_TOML, synth_schema
from tests.sources.conftest import Cohort
from tests.sources.nodefiles import securecalc, write_node

pytestmark = [pytest.mark.usefixtures("pg_password"), pytest.mark.timeout(300)]


def pg_table(pg: dict[str, Any], **relation: Any) -> dict[str, Any]:
    return {"kind": "postgres", "name": "pg", **pg, **(relation or {"table": "cohort"})}


def test_check_counts_rows_of_postgres_omop_and_fhir(tmp_path: Path, cohort: Cohort,
                                                      pg_database: dict[str, Any]) -> None:
    n = load_table(cohort.csv, synth_schema()).n_rows
    for source in (pg_table(pg_database), synth_omop_source("cdm", duckdb=cohort.duckdb),
                   synth_fhir_source("bulk", cohort.fhir)):
        config = write_node(tmp_path, [source])
        result = securecalc("node", "check", "--config", str(config))
        assert result.returncode == 0, result.stderr
        first = result.stdout.splitlines()[0]
        assert first == f"{n} rows ({source['name']}: {n}) fit the catalogue of hospital-a"
        assert re.search(r"^bmi +float +\d+ +\[15, 60\]$", result.stdout, re.MULTILINE)


def test_describe_prints_the_catalogue_without_connecting(tmp_path: Path,
                                                          pg_database: dict[str, Any]) -> None:
    config = write_node(tmp_path, [pg_table({**pg_database, "port": free_port()})])
    result = securecalc("node", "describe", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "[schema.age]" in result.stdout and "rows" not in result.stdout


def _bad_cases(cohort: Cohort, pg: dict[str, Any]) -> list[tuple[str, Any, str, str | None]]:
    """(case, sources, reason in the error, column named), with the catalogue of synth."""
    omop = synth_omop_source("cdm", duckdb=cohort.duckdb)
    absent = copy.deepcopy(omop)
    absent["columns"]["bmi"]["concept_id"] = 999_999
    counter = ("SELECT nextval('public.counter') AS age, sex, bmi, sbp, cholesterol, diabetes, "
               "arm, followup_days, event FROM public.cohort")
    return [
        ("unreachable", pg_table({**pg, "port": free_port(), "connect_timeout": 2}),
         "cannot reach the PostgreSQL server", None),
        ("password", pg_table(pg), "authentication failed for user 'securecalc_reader'", None),
        ("table", pg_table(pg, table="no_such_table"), "cannot read table no_such_table", None),
        ("column", {**pg_table(pg), "columns": {"age": "age_years"}},
         "table cohort has no column 'age_years'", "age"),
        ("concept", absent, "its concept id does not occur in measurement", "bmi"),
        ("bounds", pg_table(pg), "values outside the declared bounds [18, 60]", "age"),
        ("writes", pg_table(pg, query=counter), "the database refused the source's query",
         None),
    ]


CASES = ["unreachable", "password", "table", "column", "concept", "bounds", "writes"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_naming_source_and_column(
        tmp_path: Path, cohort: Cohort, pg_database: dict[str, Any], case: str) -> None:
    cases = {c[0]: c[1:] for c in _bad_cases(cohort, pg_database)}
    source, reason, column = cases[case]
    catalogue = (SYNTH_CATALOGUE_TOML.replace("max = 95", "max = 60") if case == "bounds"
                 else SYNTH_CATALOGUE_TOML)
    config = write_node(tmp_path, [source], catalogue=catalogue)
    env = {"SECURECALC_TEST_PG_PASSWORD": "wrong-password-value"} if case == "password" else {}
    named = f"source {source['name']!r}" + (f", column {column!r}" if column else "")
    public = f"securecalc: error: {named}: {reason}"

    check = securecalc("node", "check", "--config", str(config), env=env)
    assert check.returncode == 1
    assert check.stderr.strip().splitlines()[-1].startswith(public), check.stderr

    serve = securecalc("node", "serve", "--insecure", "--config", str(config), env=env,
                       timeout=60)
    assert serve.returncode == 1
    last = serve.stderr.strip().splitlines()[-1]
    assert last.startswith(public), serve.stderr
    assert last.endswith(" (node hospital-a; details are in this node's log)")
    assert "wrong-password-value" not in serve.stderr + check.stderr
    if case == "bounds":  # the operator's own output names the first offending row
        assert re.search(r"\d+ rows; first at row \d+", check.stdout + serve.stderr)
