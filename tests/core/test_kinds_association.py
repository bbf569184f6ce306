"""correlation and covariance: against numpy on the pooled complete cases."""

from __future__ import annotations

import numpy as np
import pytest

from securecalc.core.kinds import KINDS
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, UNGATED_STUDY, analysis, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()
COLUMNS = ["age", "bmi", "sbp", "cholesterol", "followup_days"]


@pytest.fixture(scope="module")
def sites():
    data = [generate_site(i, 1000 + 300 * i, np.random.default_rng([10, i])) for i in range(3)]
    return data, tables_from(SCHEMA, data)


def complete_cases(data, names, keep=None):
    x = np.column_stack([np.concatenate([d[c] for d in data]).astype(float) for c in names])
    rows = ~np.isnan(x).any(axis=1)
    if keep is not None:
        rows &= np.concatenate([keep(d) for d in data])
    return x[rows]


def assert_matrix(value, names, want, rel) -> None:
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert abs(value[a][b] - want[i, j]) <= rel * abs(want[i, j]) + 1e-15, (a, b)


@pytest.mark.parametrize(("engine", "mode", "rel"),
                         [("mpc", "exact", 1e-9), ("mpc", "mpc", 1e-9), ("ckks", "ckks", 1e-6)])
def test_matches_numpy(sites, engine: str, mode: str, rel: float) -> None:
    data, tables = sites
    x = complete_cases(data, COLUMNS)
    value, n = run({"kind": "correlation", "columns": COLUMNS}, SCHEMA, tables, engine=engine,
                   mode=mode)
    assert n == x.shape[0] < sum(len(d["age"]) for d in data)  # listwise
    assert_matrix(value, COLUMNS, np.corrcoef(x.T), rel)
    value, n = run({"kind": "covariance", "columns": COLUMNS}, SCHEMA, tables, engine=engine,
                   mode=mode)
    assert_matrix(value, COLUMNS, np.cov(x.T), rel)


def test_filtered(sites) -> None:
    data, tables = sites
    names = ["bmi", "age"]
    x = complete_cases(data, names, keep=lambda d: d["arm"] == "b")
    value, n = run({"kind": "covariance", "columns": names}, SCHEMA, tables, where="arm == 'b'")
    assert n == x.shape[0]
    assert_matrix(value, names, np.cov(x.T), 1e-9)


def test_data_far_from_the_centre_keep_their_accuracy() -> None:
    # Declared range [0, 1e6], data near 1000 with sd 1e-3: the centred sums of products
    # are about 2.5e11 times the covariance, so one-pass float sums would lose everything.
    schema = Schema({"u": Column("u", "float", min=0.0, max=1e6),
                     "v": Column("v", "float", min=0.0, max=1e6),
                     "k": Column("k", "int", min=0, max=10**6)})
    rng = np.random.default_rng(11)
    sites = []
    for i in range(3):
        u = 1000 + i * 1e-3 + rng.normal(0, 1e-3, 500)
        sites.append({"u": u, "v": 2 * u + rng.normal(0, 1e-3, 500),
                      "k": rng.integers(999_000, 999_100, 500)})
    tables = tables_from(schema, sites)
    x = np.column_stack([np.concatenate([s[c] for s in sites]).astype(float) for c in "uvk"])
    value, _ = run({"kind": "correlation", "columns": ["u", "v", "k"]}, schema, tables)
    assert_matrix(value, ["u", "v", "k"], np.corrcoef(x.T), 1e-9)
    value, _ = run({"kind": "covariance", "columns": ["u", "v", "k"]}, schema, tables)
    assert_matrix(value, ["u", "v", "k"], np.cov(x.T), 1e-9)


def test_constant_column_and_tiny_cohorts() -> None:
    schema = Schema({"a": Column("a", "int", min=0, max=5), "b": Column("b", "float", min=0,
                                                                        max=1)})
    tables = tables_from(schema, [{"a": [2, 2], "b": [0.1, 0.5]}, {"a": [2], "b": [0.9]},
                                  {"a": [None], "b": [0.3]}])
    value, n = run({"kind": "correlation", "columns": ["a", "b"]}, schema, tables,
                   study=UNGATED_STUDY)
    assert n == 3 and value == {"a": {"a": None, "b": None}, "b": {"a": None, "b": 1.0}}
    value, _ = run({"kind": "covariance", "columns": ["a", "b"]}, schema, tables,
                   study=UNGATED_STUDY)
    assert value["a"]["a"] == 0 and value["a"]["b"] == 0
    assert abs(value["b"]["b"] - 0.16) < 1e-15
    assert run({"kind": "correlation", "columns": ["a", "b"]}, schema, tables,
               where="b > 0.8", study=UNGATED_STUDY) == (None, 1)
    assert run({"kind": "covariance", "columns": ["a", "b"]}, schema, tables,
               where="b > 1", study=UNGATED_STUDY) == (None, 0)


def test_plan_bounds_and_scales() -> None:
    a = analysis({"kind": "correlation", "columns": ["age", "bmi"]}, SCHEMA)
    plan = KINDS["correlation"].plan(a, SCHEMA, "mpc", STUDY)
    # slots: n, S_age, S_bmi, C_age_age, C_age_bmi, C_bmi_bmi; age 18..95 (A = 39), bmi A = 22.5
    assert plan.integral == (True, True, False, True, False, False)
    assert plan.bounds == (2**31, 2**31 * 39, 2**31 * 22.5, 2**31 * 39**2, 2**31 * 39 * 22.5,
                           2**31 * 22.5**2)
    assert plan.ckks_scales == (1, 39, 22.5, 39**2, 39 * 22.5, 22.5**2)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "correlation", "columns": ["age"]}, "columns", "at least 2"),
        ({"kind": "correlation", "columns": ["age", "sex"]}, "columns", "numeric"),
        ({"kind": "covariance", "columns": ["age", "age"]}, "columns", "twice"),
        ({"kind": "covariance", "columns": ["age", "height"]}, "columns",
         "unknown column 'height'"),
        ({"kind": "covariance", "column": "age"}, "column", "unknown key"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)
