"""A million rows per site, both engines, against numpy on the pooled rows."""

from __future__ import annotations

import pytest

from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.core.table import load_table
from securecalc.engines.plain import pooled_result
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
ROWS = 1_000_000


@pytest.fixture(scope="module")
def million(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    files = write_cohort(tmp_path_factory.mktemp("million"), sites=3, rows=ROWS, seed=1,
                         names=HOSPITALS, fmt="parquet")
    cluster = cluster_factory(dict(zip(HOSPITALS, files, strict=True)), ckks="exact")
    schema = synth_schema()
    tables = [load_table(f, schema) for f in files]
    study = cluster.study("million-mpc", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML)
    expected = {a.id: ref for a in load_study_config(study).analyses
                if (ref := pooled_result(a, schema, tables)) is not None}
    return cluster, expected


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("engine", "tolerance"), [("mpc", 1e-9), ("ckks", 1e-6)])
def test_million_rows_per_site(million, engine: str, tolerance: float) -> None:  # type: ignore[no-untyped-def]
    cluster, expected = million
    result = run_study(cluster.study(f"million-{engine}", engine, SYNTH_SCHEMA_TOML,
                                     DEMO_ANALYSES_TOML))
    assert result.results["patients"].value == 3 * ROWS
    for aid, (value, n) in expected.items():
        got = result.results[aid]
        assert got.n == n, aid
        assert got.value == pytest.approx(value, rel=tolerance), aid
