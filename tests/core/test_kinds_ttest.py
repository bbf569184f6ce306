"""ttest: against scipy.stats.ttest_ind(equal_var=False) on the pooled rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from securecalc.core.kinds import KINDS
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, UNGATED_STUDY, analysis, rel_close, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()


@pytest.fixture(scope="module")
def sites():
    data = [generate_site(i, 800 + 200 * i, np.random.default_rng([9, i])) for i in range(3)]
    return data, tables_from(SCHEMA, data)


def pooled(data, name):
    return np.concatenate([d[name] for d in data])


def check(value, n, a, b, names, rel) -> None:
    welch = stats.ttest_ind(a, b, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert n == a.size + b.size
    assert value["n"] == {names[0]: a.size, names[1]: b.size}
    assert rel_close(value["mean"][names[0]], a.mean(), rel)
    assert rel_close(value["mean"][names[1]], b.mean(), rel)
    assert rel_close(value["mean_difference"], a.mean() - b.mean(), rel)
    assert rel_close(value["t"], welch.statistic, rel)
    assert rel_close(value["df"], welch.df, rel)
    assert abs(value["p_value"] - welch.pvalue) <= 1e-6
    assert rel_close(value["ci95"][0], ci.low, rel) and rel_close(value["ci95"][1], ci.high, rel)


@pytest.mark.parametrize(("engine", "mode", "rel"),
                         [("mpc", "exact", 1e-9), ("mpc", "mpc", 1e-9), ("ckks", "ckks", 1e-6)])
@pytest.mark.parametrize("column", ["sbp", "bmi", "cholesterol"])
def test_matches_scipy(sites, column: str, engine: str, mode: str, rel: float) -> None:
    data, tables = sites
    x, arm = pooled(data, column).astype(float), pooled(data, "arm")
    keep = ~np.isnan(x)
    value, n = run({"kind": "ttest", "column": column, "group": "arm", "levels": ["b", "a"]},
                   SCHEMA, tables, engine=engine, mode=mode)
    check(value, n, x[keep & (arm == "b")], x[keep & (arm == "a")], ("b", "a"), rel)


def test_with_filter_and_missing_groups(sites) -> None:
    data, tables = sites
    x, sex = pooled(data, "age").astype(float), pooled(data, "sex")
    diabetes = pooled(data, "diabetes")
    value, n = run({"kind": "ttest", "column": "age", "group": "diabetes",
                    "levels": ["yes", "no"]}, SCHEMA, tables, where="sex == 'M'")
    check(value, n, x[(sex == "M") & (diabetes == "yes")], x[(sex == "M") & (diabetes == "no")],
          ("yes", "no"), 1e-9)


def test_level_at_one_site_and_too_few_rows() -> None:
    schema = Schema({"x": Column("x", "float", min=-100.0, max=100.0),
                     "g": Column("g", "category", levels=("u", "v", "w"))})
    rng = np.random.default_rng(5)
    sites = [{"x": rng.normal(3, 2, 50), "g": ["u"] * 50},
             {"x": rng.normal(4, 5, 30), "g": ["u"] * 27 + ["v"] * 3},
             {"x": np.r_[rng.normal(2, 1, 20), [np.nan]], "g": ["u"] * 18 + [None, "w", "v"]}]
    tables = tables_from(schema, sites)
    x = np.concatenate([s["x"] for s in sites])
    g = np.concatenate([np.asarray(s["g"], dtype=object) for s in sites])
    value, n = run({"kind": "ttest", "column": "x", "group": "g", "levels": ["u", "v"]},
                   schema, tables, study=UNGATED_STUDY)
    keep = ~np.isnan(x)
    check(value, n, x[keep & (g == "u")], x[keep & (g == "v")], ("u", "v"), 1e-9)
    assert value["n"]["v"] == 3  # two at one site, one at another; the third's x is missing
    assert run({"kind": "ttest", "column": "x", "group": "g", "levels": ["u", "w"]},
               schema, tables, study=UNGATED_STUDY) == (None, 96)
    assert run({"kind": "ttest", "column": "x", "group": "g", "levels": ["u", "v"]},
               schema, tables, where="x > 1000", study=UNGATED_STUDY) == (None, 0)


def test_zero_variance() -> None:
    schema = Schema({"k": Column("k", "int", min=0, max=9),
                     "g": Column("g", "category", levels=("a", "b"))})
    tables = tables_from(schema, [{"k": [3, 3], "g": ["a", "b"]}, {"k": [3, 5], "g": ["a", "b"]},
                                  {"k": [5], "g": ["b"]}])
    value, n = run({"kind": "ttest", "column": "k", "group": "g", "levels": ["a", "b"]},
                   schema, tables, study=UNGATED_STUDY)
    assert n == 5 and value["mean_difference"] == -4 / 3
    assert value["t"] is not None
    tables = tables_from(schema, [{"k": [3, 4], "g": ["a", "b"]}, {"k": [3, 4], "g": ["a", "b"]},
                                  {"k": [], "g": []}])
    value, n = run({"kind": "ttest", "column": "k", "group": "g", "levels": ["a", "b"]},
                   schema, tables, study=UNGATED_STUDY)
    assert value["mean_difference"] == -1 and value["t"] is None and value["ci95"] is None


def test_plan_is_two_moment_blocks() -> None:
    a = analysis({"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a", "b"]},
                 SCHEMA)
    plan = KINDS["ttest"].plan(a, SCHEMA, "mpc", STUDY)
    assert plan.integral == (True,) * 6
    assert plan.bounds == (2**31, 2**31 * 70, 2**31 * 70**2) * 2  # sbp: 80..220, centre 150
    assert plan.ckks_scales == (1, 70, 70**2) * 2


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a"]}, "levels",
         "2 levels"),
        ({"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a", "c"]}, "levels",
         "unknown level 'c' of column 'arm'"),
        ({"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a", "a"]}, "levels",
         "twice"),
        ({"kind": "ttest", "column": "sbp", "group": "age", "levels": ["a", "b"]}, "group",
         "category"),
        ({"kind": "ttest", "column": "sbp", "levels": ["a", "b"]}, "group", "needs a group"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)
