"""A kind written from scratch for the tests (tests/kinds_extra/geometric_mean.py) runs on
every engine with no edit outside its own module: registered here, it is validated, planned,
computed locally, shared, released and finished by the same code as the built-in kinds.

Each engine's result is compared with numpy on the pooled rows: the plaintext stand-in
(tests/core/kinds_engine.py), MPC with real MPyC workers, CKKS with real TenSEAL.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from securecalc.core.analyses import Analysis
from securecalc.core.kinds import KINDS, register, unregister
from securecalc.core.schema import Column, Schema
from securecalc.core.study_model import analysis_from_mapping
from securecalc.core.table import Table
from securecalc.engines.plain import pooled_values
from securecalc.errors import ConfigError
from tests.core.kinds_engine import UNGATED_STUDY, run
from tests.engines.adapter_runs import new_job, results_on_ckks, results_on_mpc
from tests.kinds_extra.geometric_mean import GEOMETRIC_MEAN

SCHEMA = Schema({
    "x": Column("x", "float", min=0.5, max=250.0),
    "dose": Column("dose", "int", min=1, max=40),
    "arm": Column("arm", "category", levels=("a", "b")),
})


@pytest.fixture(autouse=True)
def geometric_mean() -> Iterator[None]:
    register(GEOMETRIC_MEAN)
    try:
        yield
    finally:
        unregister(GEOMETRIC_MEAN.name)


def sites(rng: np.random.Generator) -> list[Table]:
    tables = []
    for m in (60, 45, 52):
        tables.append(Table.from_columns(SCHEMA, {
            "x": np.clip(rng.lognormal(2.0, 1.0, m), 0.5, 250.0),
            "dose": rng.integers(1, 41, m),
            "arm": rng.choice(["a", "b"], m),
        }))
    return tables


ANALYSES = [
    {"id": "gx", "kind": "geometric_mean", "column": "x"},
    {"id": "gdose_b", "kind": "geometric_mean", "column": "dose", "where": "arm == 'b'"},
    {"id": "n", "kind": "count"},
]


def analyses() -> list[Analysis]:
    return [analysis_from_mapping(raw, index=i, schema=SCHEMA) for i, raw in enumerate(ANALYSES)]


def expected(analysis: Analysis, tables: list[Table]) -> tuple[float, int]:
    x = pooled_values(analysis, SCHEMA, tables)
    return float(np.exp(np.mean(np.log(x)))), int(x.size)


def test_registration_is_scoped_to_the_test() -> None:
    assert KINDS["geometric_mean"] is GEOMETRIC_MEAN
    with pytest.raises(ValueError, match="already registered"):
        register(GEOMETRIC_MEAN)
    with pytest.raises(ConfigError, match="lower bound is positive"):
        analysis_from_mapping({"id": "g", "kind": "geometric_mean", "column": "x"}, index=0,
                              schema=Schema({"x": Column("x", "float", min=0.0, max=1.0)}))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["exact", "mpc", "ckks"])
def test_on_the_plaintext_stand_in(mode: str) -> None:
    tables = sites(np.random.default_rng(3))
    for a in analyses()[:2]:
        value, n = run(a, SCHEMA, tables, engine="ckks" if mode == "ckks" else "mpc",
                       mode=mode, study=UNGATED_STUDY)
        want, want_n = expected(a, tables)
        assert n == want_n
        assert value == pytest.approx(want, rel=1e-9)


@pytest.mark.timeout(120)
def test_on_mpc_with_mpyc_workers() -> None:
    tables = sites(np.random.default_rng(4))
    job = new_job(SCHEMA, analyses())
    results = results_on_mpc(job, tables)
    for a in analyses()[:2]:
        value, n, note = results[a.id]
        want, want_n = expected(a, tables)
        assert (n, note) == (want_n, None)
        assert value == pytest.approx(want, rel=1e-12)
    assert results["n"][:2] == (157, 157)


@pytest.mark.timeout(120)
def test_on_ckks_with_tenseal() -> None:
    tables = sites(np.random.default_rng(5))
    job = new_job(SCHEMA, analyses())
    results = results_on_ckks(job, tables)
    for a in analyses()[:2]:
        value, n, note = results[a.id]
        want, want_n = expected(a, tables)
        assert (n, note) == (want_n, None)
        assert value == pytest.approx(want, rel=1e-6)
    assert results["n"][:2] == (157, 157)


@pytest.mark.timeout(120)
def test_a_small_cohort_is_withheld_on_both_engines() -> None:
    tables = sites(np.random.default_rng(6))
    job = new_job(SCHEMA, analyses(), min_cohort=200)
    for results in (results_on_mpc(job, tables), results_on_ckks(job, tables)):
        value, n, note = results["gx"]
        assert (value, n) == (None, None) and note is not None and "min_cohort" in note
