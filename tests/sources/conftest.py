"""Fixtures of the source tests: a real PostgreSQL server (session-scoped, always stopped)
and the synthetic cohort as CSV, OMOP (DuckDB and PostgreSQL) and FHIR."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from securecalc.sources.pgserver import PostgresServer, PostgresUnavailable
from securecalc.sources.synthetic import load_omop, write_fhir, write_omop
from securecalc.synth import write_cohort

ROWS, SEED = 400, 11
READER, READER_PASSWORD = "securecalc_reader", "reader-password"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start a test PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Cohort:
    csv: Path
    omop: Path
    fhir: Path
    duckdb: Path


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    """Site 2 of the synthetic cohort in every format (site 2: deaths, missing values)."""
    root = tmp_path_factory.mktemp("cohort")
    names = ["site-a", "site-b", "site-c"]
    csv = write_cohort(root / "csv", sites=3, rows=ROWS, seed=SEED, names=names)[2]
    omop = write_omop(root / "omop", sites=3, rows=ROWS, seed=SEED, names=names)[2]
    fhir = write_fhir(root / "fhir", sites=3, rows=ROWS, seed=SEED, names=names)[2]
    db = root / "omop.duckdb"
    with duckdb.connect(str(db)) as conn:
        load_omop(conn, omop)
    return Cohort(csv, omop, fhir, db)


@pytest.fixture(scope="session")
def pg_database(postgres: PostgresServer, cohort: Cohort) -> dict[str, Any]:
    """A database ``research`` holding the OMOP extract (schema cdm) and the CSV cohort
    (table public.cohort), readable by a login role with a password; its connection fields
    as a ``[[source]]`` declares them (password in an environment variable)."""
    with postgres.connect() as admin:
        admin.execute("CREATE DATABASE research")
        admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'")
    with postgres.connect("research", autocommit=False) as conn:
        load_omop(conn, cohort.omop)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE public.cohort (age integer, sex text, bmi numeric, "
                        "sbp integer, cholesterol double precision, diabetes text, arm text, "
                        "followup_days integer, event integer)")
            with cohort.csv.open("rb") as f, cur.copy(
                    "COPY public.cohort FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(f.read())
            cur.execute("CREATE VIEW public.cohort_view AS SELECT * FROM public.cohort")
            cur.execute("CREATE SEQUENCE public.counter")  # writes when read: nextval()
            cur.execute(f"GRANT USAGE ON SEQUENCE public.counter TO {READER}")
            cur.execute(f"GRANT USAGE ON SCHEMA cdm TO {READER}")
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA cdm, public TO {READER}")
        conn.commit()
    return {"host": postgres.host, "port": postgres.port, "database": "research",
            "user": READER, "password_env": "SECURECALC_TEST_PG_PASSWORD", "sslmode": "disable"}


@pytest.fixture
def pg_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURECALC_TEST_PG_PASSWORD", READER_PASSWORD)
