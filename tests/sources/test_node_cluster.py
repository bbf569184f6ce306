"""Real node processes reading PostgreSQL, OMOP (DuckDB) and FHIR sources release exactly what
nodes reading the same rows from CSV files release, on MPC and CKKS; a database whose rows stop
fitting makes the node refuse studies with a fixed text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.core.results import StudyResult
from securecalc.errors import SecureCalcError
from securecalc.node.datastore import unfit_message
from securecalc.sources.pgserver import PostgresServer
from securecalc.sources.synthetic import (
    load_omop,
    synth_fhir_source,
    synth_omop_source,
    write_fhir,
    write_omop,
)
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from tests.sources.released import assert_same_release, released

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
ROWS, SEED = 300, 5
DATABASE, ROLE, PASSWORD = "warehouse_a", "node_a_reader", "node-a-password"
#: CKKS decrypts with noise below the released bits; two encryptions may differ there
CKKS_REL = 1e-6

pytestmark = pytest.mark.timeout(600)


@dataclass
class Clusters:
    files: LocalCluster
    sources: LocalCluster
    postgres: PostgresServer


def _postgres_table(server: PostgresServer, csv: Path, secrets: Path) -> dict[str, Any]:
    """hospital-a's CSV as table ``cohort`` of its own database, with a reader role."""
    with server.connect() as admin:
        admin.execute(f"CREATE DATABASE {DATABASE}")
        admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
    with server.connect(DATABASE) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE cohort (age integer, sex text, bmi numeric, sbp integer, "
                    "cholesterol double precision, diabetes text, arm text, "
                    "followup_days integer, event integer)")
        with csv.open("rb") as f, cur.copy(
                "COPY cohort FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(f.read())
        cur.execute(f"GRANT SELECT ON cohort TO {ROLE}")
    secrets.mkdir(mode=0o700)
    (secrets / "a.password").write_text(PASSWORD + "\n")
    return {"kind": "postgres", "name": "warehouse", "host": server.host, "port": server.port,
            "database": DATABASE, "user": ROLE, "password_file": str(secrets / "a.password"),
            "sslmode": "disable", "table": "cohort"}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory,
             postgres: PostgresServer) -> Iterator[Clusters]:
    root = tmp_path_factory.mktemp("node-sources")
    files = write_cohort(root / "csv", sites=3, rows=ROWS, seed=SEED, names=HOSPITALS)
    omop = write_omop(root / "omop", sites=3, rows=ROWS, seed=SEED, names=HOSPITALS)[1]
    fhir = write_fhir(root / "fhir", sites=3, rows=ROWS, seed=SEED, names=HOSPITALS)[2]
    with duckdb.connect(str(root / "b.duckdb")) as conn:
        load_omop(conn, omop)
    sources = {
        "hospital-a": [_postgres_table(postgres, files[0], root / "secrets")],
        "hospital-b": [synth_omop_source("cdm", duckdb=root / "b.duckdb")],
        "hospital-c": [synth_fhir_source("bulk", fhir)],
    }
    with LocalCluster.start(root / "files", dict(zip(HOSPITALS, files, strict=True)),
                            ckks="exact") as by_file, \
            LocalCluster.start(root / "sources", sources, ckks="exact") as by_source:
        yield Clusters(by_file, by_source, postgres)


def _run(cluster: LocalCluster, name: str, engine: str, analyses: str) -> StudyResult:
    study = cluster.study(name, engine, SYNTH_SCHEMA_TOML, analyses)
    return run_study(load_study_config(study))


@pytest.mark.parametrize(("engine", "rel"), [("mpc", 0.0), ("ckks", CKKS_REL)])
def test_sources_release_what_the_files_release(clusters: Clusters, engine: str,
                                                rel: float) -> None:
    by_file = released(_run(clusters.files, f"files-{engine}", engine, DEMO_ANALYSES_TOML))
    by_source = released(_run(clusters.sources, f"sources-{engine}", engine,
                              DEMO_ANALYSES_TOML))
    assert by_file["patients"]["value"] == 3 * ROWS
    assert_same_release(by_source, by_file, rel=rel)


def test_rows_that_stop_fitting_are_refused_with_a_fixed_text(clusters: Clusters) -> None:
    count = '[[analysis]]\nid = "n"\nkind = "count"\n'
    with clusters.postgres.connect(DATABASE) as conn:
        conn.execute("INSERT INTO cohort (age, sex) VALUES (130, 'F')")
    try:
        with pytest.raises(SecureCalcError) as refused:
            _run(clusters.sources, "unfit", "mpc", count)
        assert str(refused.value) == f"hospital-a: {unfit_message('hospital-a')}"
        log = (clusters.sources.root / "logs" / "hospital-a.log").read_text()
        assert "source 'warehouse', column 'age': values outside the declared bounds" in log
    finally:
        with clusters.postgres.connect(DATABASE) as conn:
            conn.execute("DELETE FROM cohort WHERE age = 130")
    assert released(_run(clusters.sources, "fits-again", "mpc", count))["n"]["value"] == 3 * ROWS
