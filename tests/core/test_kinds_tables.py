"""histogram and crosstab: against numpy.histogram and scipy's chi2_contingency."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from securecalc.core.kinds import KINDS, StudyOptions
from securecalc.core.plans import SumPlan
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, analysis, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()


@pytest.fixture(scope="module")
def sites():
    data = [generate_site(i, 900 + 100 * i, np.random.default_rng([8, i])) for i in range(3)]
    return data, tables_from(SCHEMA, data)


def pooled(data, column):
    return np.concatenate([d[column] for d in data])


@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_histogram_matches_numpy(sites, engine: str) -> None:
    data, tables = sites
    bmi = pooled(data, "bmi")
    bmi = bmi[~np.isnan(bmi)]
    edges = [18.5, 25, 30, 35, 40.0]  # values outside are not counted; the last bin is closed
    value, n = run({"kind": "histogram", "column": "bmi", "edges": edges}, SCHEMA, tables,
                   engine=engine, study=StudyOptions(min_cell_count=1))
    counts, _ = np.histogram(bmi, bins=edges)
    assert value == {"edges": edges, "counts": counts.tolist()}
    assert n == int(counts.sum()) < bmi.size


def test_histogram_last_edge_is_closed_and_a_small_bin_withholds_the_table() -> None:
    schema = Schema({"k": Column("k", "int", min=0, max=10)})
    sites = [{"k": [0, 1, 1, 5, 10, 10, None]}, {"k": [1, 1, 2, 9, 10]}, {"k": [3, 10, 10]}]
    tables = tables_from(schema, sites)
    x = np.array([0, 1, 1, 5, 10, 10, 1, 1, 2, 9, 10, 3, 10, 10])
    edges = [0, 2, 6, 10]
    counts, _ = np.histogram(x, bins=edges)
    assert counts.tolist() == [5, 3, 6]
    # 3 is below min_cell_count 5: nothing is released, so n minus a count reveals nothing
    assert run({"kind": "histogram", "column": "k", "edges": edges}, schema, tables) == \
        (None, None)
    value, n = run({"kind": "histogram", "column": "k", "edges": edges}, schema, tables,
                   study=StudyOptions(min_cell_count=3))
    assert value["counts"] == [5, 3, 6] and n == 14
    # a table of fewer than min_cohort rows is withheld too
    assert run({"kind": "histogram", "column": "k", "edges": edges}, schema, tables,
               study=StudyOptions(min_cell_count=3, min_cohort=15)) == (None, None)
    # zero cells are released: they rest on no patient
    value, n = run({"kind": "histogram", "column": "k", "edges": [0, 6, 8, 10]}, schema,
                   tables, study=StudyOptions(min_cell_count=3))
    assert value["counts"] == [8, 0, 6] and n == 14


@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_crosstab_matches_scipy(sites, engine: str) -> None:
    data, tables = sites
    sex, diabetes = pooled(data, "sex"), pooled(data, "diabetes")
    table = np.array([[np.sum((sex == s) & (diabetes == d)) for d in ("no", "yes")]
                      for s in ("F", "M")])
    value, n = run({"kind": "crosstab", "row": "sex", "col": "diabetes"}, SCHEMA, tables,
                   engine=engine)
    assert value["table"] == {s: {d: int(table[i, j]) for j, d in enumerate(("no", "yes"))}
                              for i, s in enumerate(("F", "M"))}
    assert n == table.sum() == sex.size
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert abs(value["chi2"]["statistic"] - chi2) <= 1e-9 * chi2
    assert abs(value["chi2"]["p_value"] - p) <= 1e-6
    assert value["chi2"]["dof"] == dof == 1 and value["note"] is None


def crosstab_schema() -> Schema:
    return Schema({"ward": Column("ward", "category", levels=("icu", "med", "surg", "rare")),
                   "outcome": Column("outcome", "category", levels=("ok", "bad", "dead"))})


def test_crosstab_small_cell_withholds_the_table() -> None:
    rng = np.random.default_rng(3)
    schema = crosstab_schema()
    sites = []
    for i in range(3):
        ward = rng.choice(["icu", "med", "surg"], 300).astype(object)
        outcome = rng.choice(["ok", "bad", "dead"], 300, p=[0.7, 0.25, 0.05]).astype(object)
        ward[rng.random(300) < 0.03] = None
        if i == 1:  # a level present at this site only: 3 rows
            ward[:3], outcome[:3] = "rare", "ok"
        sites.append({"ward": list(ward), "outcome": list(outcome)})
    tables = tables_from(schema, sites)
    raw = {"kind": "crosstab", "row": "ward", "col": "outcome"}
    assert run(raw, schema, tables) == (None, None)  # the rare level's 3 rows
    value, n = run(raw, schema, tables, study=StudyOptions(min_cell_count=3))
    assert value["table"]["rare"] == {"ok": 3, "bad": 0, "dead": 0}
    ward = np.concatenate([s["ward"] for s in sites])
    assert n == np.sum(ward != None) and value["chi2"] is not None  # noqa: E711


def test_crosstab_level_at_one_site_only() -> None:
    rng = np.random.default_rng(4)
    schema = crosstab_schema()
    sites = []
    for i in range(3):
        wards = ["icu", "med", "surg", "rare"] if i == 2 else ["icu", "med", "surg"]
        ward = rng.choice(wards, 400).astype(object)
        outcome = rng.choice(["ok", "bad", "dead"], 400, p=[0.5, 0.3, 0.2]).astype(object)
        outcome[rng.random(400) < 0.05] = None
        sites.append({"ward": list(ward), "outcome": list(outcome)})
    value, n = run({"kind": "crosstab", "row": "ward", "col": "outcome"}, schema,
                   tables_from(schema, sites), engine="ckks")
    ward = np.concatenate([s["ward"] for s in sites])
    outcome = np.concatenate([s["outcome"] for s in sites])
    levels = ("icu", "med", "surg", "rare"), ("ok", "bad", "dead")
    observed = np.array([[np.sum((ward == w) & (outcome == o)) for o in levels[1]]
                         for w in levels[0]])
    assert value["table"] == {w: {o: int(observed[i, j]) for j, o in enumerate(levels[1])}
                              for i, w in enumerate(levels[0])}
    assert n == observed.sum()
    chi2, p, dof, _ = stats.chi2_contingency(observed, correction=False)
    assert abs(value["chi2"]["statistic"] - chi2) <= 1e-9 * chi2
    assert abs(value["chi2"]["p_value"] - p) <= 1e-6 and value["chi2"]["dof"] == dof == 6


def test_crosstab_drops_empty_levels_when_zeros_are_released() -> None:
    # An engine that releases zero counts: empty levels leave the test, as scipy needs.
    schema = crosstab_schema()
    a = analysis({"kind": "crosstab", "row": "ward", "col": "outcome"}, schema)
    observed = np.array([[20, 11, 6], [0, 0, 0], [31, 9, 7], [12, 10, 5]])
    released = tuple(Fraction(int(v)) for v in observed.ravel())
    value, n = KINDS["crosstab"].finish(a, schema, released, StudyOptions(min_cell_count=1))
    chi2, p, dof, _ = stats.chi2_contingency(observed[[0, 2, 3]], correction=False)
    assert n == observed.sum()
    assert value["chi2"]["dof"] == dof == 4
    assert abs(value["chi2"]["statistic"] - chi2) <= 1e-12 * chi2
    assert abs(value["chi2"]["p_value"] - p) <= 1e-12
    assert value["note"] == "levels with no rows left out of the test: ward='med'"
    one_col = np.zeros_like(observed)
    one_col[:, 0] = [5, 6, 7, 8]
    value, _ = KINDS["crosstab"].finish(a, schema, tuple(Fraction(int(v)) for v in
                                                         one_col.ravel()), STUDY)
    assert value["chi2"] is None and "fewer than two" in value["note"]


def test_plans_gate_exact_tables_and_suppress_noisy_cells() -> None:
    a = analysis({"kind": "crosstab", "row": "sex", "col": "arm"}, SCHEMA)
    kind = KINDS["crosstab"]
    plan = kind.plan(a, SCHEMA, "mpc", StudyOptions(min_cell_count=11))
    assert plan == SumPlan.counts(5)  # four cells, then their total
    assert kind.cell_slots(a, SCHEMA, plan) == (0, 1, 2, 3)
    assert kind.cohort_slots(a, SCHEMA, plan) == (4,)
    noisy = analysis({"kind": "crosstab", "row": "sex", "col": "arm", "epsilon": 0.5}, SCHEMA)
    plan = kind.plan(noisy, SCHEMA, "mpc", StudyOptions(min_cell_count=11))
    assert plan == SumPlan((True,) * 4, (2**31,) * 4, (1,) * 4, suppress_below=11)
    assert kind.cell_slots(noisy, SCHEMA, plan) == kind.cohort_slots(noisy, SCHEMA, plan) == ()
    h = analysis({"kind": "histogram", "column": "age", "edges": [18, 40, 60, 95]}, SCHEMA)
    assert KINDS["histogram"].plan(h, SCHEMA, "ckks", STUDY).width == 4


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "histogram", "column": "age", "edges": [40]}, "edges", "at least 2"),
        ({"kind": "histogram", "column": "age", "edges": [40, 30]}, "edges", "increasing"),
        ({"kind": "histogram", "column": "age", "edges": [1, "x"]}, "edges", "numbers"),
        ({"kind": "histogram", "column": "arm", "edges": [0, 1]}, "column", "numeric"),
        ({"kind": "crosstab", "row": "sex", "col": "sex"}, "col", "must differ"),
        ({"kind": "crosstab", "row": "age", "col": "sex"}, "row", "category"),
        ({"kind": "crosstab", "row": "sex", "col": "ward"}, "col", "unknown column 'ward'"),
        ({"kind": "crosstab", "row": "sex"}, "col", "needs a col"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)


def test_empty_cohort(sites) -> None:
    _, tables = sites
    assert run({"kind": "histogram", "column": "age", "edges": [18, 50, 95]}, SCHEMA,
               tables, where="age > 200") == (None, None)
    assert run({"kind": "crosstab", "row": "sex", "col": "arm"}, SCHEMA, tables,
               where="age > 200") == (None, None)
