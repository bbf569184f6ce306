"""linreg and logreg: against statsmodels OLS and Logit on the pooled complete cases."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import statsmodels.api as sm

from securecalc.core.kinds import KINDS
from securecalc.core.kinds.regression import LogisticProgram
from securecalc.core.plans import IterativePlan
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError, DataError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, UNGATED_STUDY, analysis, rel_close, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()
X = ["age", "bmi", "sex", "cholesterol"]
NAMES = ["(intercept)", "age", "bmi", "sex[M]", "cholesterol"]
MODES = [("mpc", "exact", 1e-9), ("mpc", "mpc", 1e-9), ("ckks", "ckks", 1e-5)]


@pytest.fixture(scope="module")
def synth():
    data = [generate_site(i, 1500 + 500 * i, np.random.default_rng([12, i])) for i in range(3)]
    pooled = {c: np.concatenate([d[c] for d in data]) for c in data[0]}
    keep = ~np.isnan(pooled["bmi"]) & ~np.isnan(pooled["cholesterol"])
    design = np.column_stack([pooled["age"], pooled["bmi"], pooled["sex"] == "M",
                              pooled["cholesterol"]]).astype(float)
    return tables_from(SCHEMA, data), pooled, keep, sm.add_constant(design[keep])


def check_coefficients(value, names, fit, rel, stat) -> None:
    for k, name in enumerate(names):
        coef = value["coefficients"][name]
        assert rel_close(coef["estimate"], fit.params[k], rel), name
        assert rel_close(coef["se"], fit.bse[k], rel), name
        assert rel_close(coef[stat], fit.tvalues[k], rel), name
        assert abs(coef["p_value"] - fit.pvalues[k]) <= 1e-6, name
    assert list(value["coefficients"]) == list(names)


# --------------------------------------------------------------------------- linreg


@pytest.mark.parametrize(("engine", "mode", "rel"), MODES)
def test_linreg_matches_statsmodels(synth, engine: str, mode: str, rel: float) -> None:
    tables, pooled, keep, design = synth
    value, n = run({"kind": "linreg", "y": "sbp", "x": X}, SCHEMA, tables, engine=engine,
                   mode=mode)
    ols = sm.OLS(pooled["sbp"][keep].astype(float), design).fit()
    assert n == value["n"] == keep.sum()
    check_coefficients(value, NAMES, ols, rel, "t")
    assert rel_close(value["r_squared"], ols.rsquared, rel)
    assert rel_close(value["adj_r_squared"], ols.rsquared_adj, rel)
    assert rel_close(value["sigma"], np.sqrt(ols.scale), rel)
    assert value["df_resid"] == ols.df_resid


def ward_schema() -> Schema:
    return Schema({"y": Column("y", "float", min=-1000.0, max=1000.0),
                   "u": Column("u", "float", min=-50.0, max=50.0),
                   "k": Column("k", "int", min=0, max=100),
                   "w": Column("w", "int", min=0, max=300),
                   "g": Column("g", "category", levels=("base", "mid", "top", "never")),
                   "yes": Column("yes", "int", min=0, max=1)})


def ward_sites(rng: np.random.Generator, rows=(300, 200, 250), top_site=1):
    sites = []
    for i, m in enumerate(rows):
        u = rng.normal(2, 10, m)
        k = rng.integers(0, 101, m)
        g = rng.choice(["base", "mid", "top"] if i == top_site else ["base", "mid"], m)
        y = 3 + 0.5 * u - 0.2 * k + 4 * (g == "mid") - 6 * (g == "top") + rng.normal(0, 5, m)
        u[rng.random(m) < 0.05] = np.nan
        eta = -1 + 0.05 * u + 1.2 * (g == "top")
        yes = (rng.random(m) < 1 / (1 + np.exp(-np.nan_to_num(eta)))).astype(int)
        sites.append({"y": y, "u": u, "k": k, "w": 2 * k + 7, "g": g, "yes": yes})
    return sites


def ward_design(sites, names):
    cols = []
    for name in names:
        values = np.concatenate([s[name[0]] for s in sites])
        cols.append((values == name[2:-1]).astype(float) if name.startswith("g[") else
                    values.astype(float))
    x = np.column_stack(cols)
    keep = ~np.isnan(x).any(axis=1)
    return keep, sm.add_constant(x[keep])


def test_linreg_category_with_a_level_at_one_site_only() -> None:
    schema = ward_schema()
    sites = ward_sites(np.random.default_rng(13))
    tables = tables_from(schema, sites)
    names = ["u", "k", "g[mid]", "g[top]"]
    keep, design = ward_design(sites, names)
    y = np.concatenate([s["y"] for s in sites])
    # g[never] is declared but absent everywhere: its indicator is constant (zero)
    with pytest.raises(DataError) as info:
        run({"kind": "linreg", "y": "y", "x": ["u", "k", "g"]}, schema, tables, study=UNGATED_STUDY)
    assert "analysis 'a'" in str(info.value) and "'g[never]'" in str(info.value)
    assert "constant" in str(info.value)
    # gated, the absent level (a count below min_cohort) withholds the analysis instead
    assert run({"kind": "linreg", "y": "y", "x": ["u", "k", "g"]}, schema, tables) == \
        (None, None)
    # the same model without the absent level, through a schema that does not declare it
    levels = Schema({**schema.columns, "g": Column("g", "category",
                                                   levels=("base", "mid", "top"))})
    value, n = run({"kind": "linreg", "y": "y", "x": ["u", "k", "g"]}, levels,
                   tables_from(levels, sites), study=UNGATED_STUDY)
    ols = sm.OLS(y[keep], design).fit()
    assert n == keep.sum()
    check_coefficients(value, ["(intercept)", *names], ols, 1e-9, "t")


@pytest.mark.parametrize(
    ("x", "offending", "involved"),
    [
        (["u", "k", "w"], "'w'", "'k'"),  # w = 2k + 7, exactly (int columns)
        (["k", "u", "w"], "'w'", "'k'"),
        (["w", "u", "k"], "'k'", "'w'"),
    ],
)
def test_linreg_collinear_predictors_are_named(x, offending: str, involved: str) -> None:
    schema = ward_schema()
    tables = tables_from(schema, ward_sites(np.random.default_rng(14)))
    with pytest.raises(DataError) as info:
        run({"kind": "linreg", "y": "y", "x": x}, schema, tables)
    message = str(info.value)
    assert message.startswith("analysis 'a': collinear predictors: ")
    assert f"{offending} is (nearly) a linear combination of the intercept and {involved}" \
        in message
    assert "'u'" not in message


def test_linreg_float_collinearity_and_constants() -> None:
    schema = Schema({"y": Column("y", "float", min=-1e3, max=1e3),
                     "a": Column("a", "float", min=-10.0, max=10.0),
                     "b": Column("b", "float", min=-10.0, max=10.0),
                     "c": Column("c", "float", min=-30.0, max=30.0),
                     "z": Column("z", "float", min=0.0, max=1.0)})
    rng = np.random.default_rng(15)
    sites = []
    for m in (100, 80, 60):
        a, b = rng.uniform(-10, 10, m), rng.uniform(-10, 10, m)
        sites.append({"y": a + b + rng.normal(0, 1, m), "a": a, "b": b, "c": a - 0.3 * b + 2,
                      "z": np.full(m, 0.3)})
    tables = tables_from(schema, sites)
    with pytest.raises(DataError, match="'c' is \\(nearly\\) a linear combination of the "
                                        "intercept and 'a', 'b'"):
        run({"kind": "linreg", "y": "y", "x": ["a", "b", "c"]}, schema, tables)
    with pytest.raises(DataError, match="'z' is constant"):
        run({"kind": "linreg", "y": "y", "x": ["a", "z"]}, schema, tables)


def test_linreg_too_few_rows_and_empty_cohort(synth) -> None:
    tables = synth[0]
    raw = {"kind": "linreg", "y": "sbp", "x": ["age", "sex"]}
    assert run(raw, SCHEMA, tables, where="age > 200", study=UNGATED_STUDY) == (None, 0)
    schema = ward_schema()
    tiny = tables_from(schema, [{"y": [1.0, 2.0], "u": [0.0, 1.0], "k": [1, 2]},
                                {"y": [3.0], "u": [5.0], "k": [3]}, {"y": [], "u": [], "k": []}])
    assert run({"kind": "linreg", "y": "y", "x": ["u", "k"]}, schema, tiny,
               study=UNGATED_STUDY) == (None, 3)


def test_linreg_plan_uses_centred_terms() -> None:
    a = analysis({"kind": "linreg", "y": "sbp", "x": ["age", "sex"]}, SCHEMA)
    plan = KINDS["linreg"].plan(a, SCHEMA, "mpc", STUDY)
    # terms: age (A 39), sex[M] (A 1), sbp (A 70): n, 3 sums, 6 cross-products; then the
    # counts of the two levels of sex
    assert plan.width == 12 and all(plan.integral)
    assert plan.bounds == tuple(2**31 * Fraction(v) for v in
                                (1, 39, 1, 70, 39**2, 39, 39 * 70, 1, 70, 70**2, 1, 1))
    assert KINDS["linreg"].cohort_slots(a, SCHEMA, plan) == (0, 10, 11)


# --------------------------------------------------------------------------- logreg


@pytest.mark.parametrize(("engine", "mode", "rel"), MODES)
def test_logreg_matches_statsmodels(synth, engine: str, mode: str, rel: float) -> None:
    tables, pooled, keep, design = synth
    value, n = run({"kind": "logreg", "y": "diabetes", "x": X}, SCHEMA, tables, engine=engine,
                   mode=mode)
    y = (pooled["diabetes"] == "yes").astype(float)[keep]
    fit = sm.Logit(y, design).fit(disp=0)
    assert value["converged"] is True and n == value["n"] == keep.sum()
    check_coefficients(value, NAMES, fit, rel, "z")
    assert rel_close(value["log_likelihood"], fit.llf, rel)
    assert abs(value["iterations"] - fit.mle_retvals["iterations"]) <= 2


def test_logreg_int_outcome_category_level_at_one_site_and_filter() -> None:
    schema = Schema({**ward_schema().columns,
                     "g": Column("g", "category", levels=("base", "mid", "top"))})
    sites = ward_sites(np.random.default_rng(16), rows=(400, 300, 300), top_site=2)
    tables = tables_from(schema, sites)
    names = ["u", "k", "g[mid]", "g[top]"]
    keep, design = ward_design(sites, names)
    y = np.concatenate([s["yes"] for s in sites]).astype(float)[keep]
    value, n = run({"kind": "logreg", "y": "yes", "x": ["u", "k", "g"], "tol": 1e-10},
                   schema, tables)
    fit = sm.Logit(y, design).fit(disp=0, tol=1e-10)
    check_coefficients(value, ["(intercept)", *names], fit, 1e-9, "z")
    assert rel_close(value["log_likelihood"], fit.llf, 1e-12)


def test_logreg_perfect_separation_does_not_converge() -> None:
    schema = Schema({"x": Column("x", "float", min=-10.0, max=10.0),
                     "y": Column("y", "int", min=0, max=1)})
    rng = np.random.default_rng(17)
    sites = []
    for m in (40, 30, 20):
        x = rng.uniform(-5, 5, m)
        sites.append({"x": x, "y": (x > 0.5).astype(int)})
    tables = tables_from(schema, sites)
    value, n = run({"kind": "logreg", "y": "y", "x": ["x"]}, schema, tables)
    assert value["converged"] is False and n == 90
    assert value["coefficients"]["x"]["estimate"] > 5  # still growing
    assert value["iterations"] <= 25
    value, _ = run({"kind": "logreg", "y": "y", "x": ["x"], "max_iter": 3}, schema, tables)
    assert value["converged"] is False and value["iterations"] == 3
    # a constant outcome separates too; gated, it is withheld (no row has the other outcome)
    value, _ = run({"kind": "logreg", "y": "y", "x": ["x"]}, schema, tables, where="x > 1",
                   study=UNGATED_STUDY)
    assert value["converged"] is False
    assert run({"kind": "logreg", "y": "y", "x": ["x"]}, schema, tables, where="x > 1") == \
        (None, None)


def test_logreg_collinear_and_tiny(synth) -> None:
    schema = ward_schema()
    tables = tables_from(schema, ward_sites(np.random.default_rng(18)))
    with pytest.raises(DataError) as info:
        run({"kind": "logreg", "y": "yes", "x": ["u", "k", "w"]}, schema, tables,
            study=UNGATED_STUDY)
    assert str(info.value).startswith("analysis 'a': collinear predictors: 'w' is (nearly) a "
                                      "linear combination of the intercept and 'k'")
    with pytest.raises(DataError, match="'g\\[never\\]' is constant"):
        run({"kind": "logreg", "y": "yes", "x": ["u", "g"]}, schema, tables, study=UNGATED_STUDY)
    assert run({"kind": "logreg", "y": "diabetes", "x": ["age"]}, SCHEMA, synth[0],
               where="age > 200", study=UNGATED_STUDY) == (None, 0)


def test_logreg_program_is_deterministic_and_json() -> None:
    a = analysis({"kind": "logreg", "y": "diabetes", "x": ["age", "sex"]}, SCHEMA)
    plan = KINDS["logreg"].plan(a, SCHEMA, "ckks", STUDY)
    assert isinstance(plan, IterativePlan) and isinstance(plan.program, LogisticProgram)
    program = plan.program
    assert program.max_rounds == 26 and repr(program) == repr(KINDS["logreg"].plan(
        a, SCHEMA, "mpc", STUDY).program)
    state = program.initial_state()
    first = program.round_plan(state)
    # n, gradient (3), Hessian (6), log-likelihood; |x_j x_k w| <= A_j A_k / 4; then (first
    # round only) the counts of both values of diabetes and of sex, which gate the release
    assert first.width == 15 and first.integral == (True,) + (False,) * 10 + (True,) * 4
    assert first.bounds[4] == 2**31 * Fraction(1, 4) and first.bounds[7] == 2**31 * 39**2 / 4
    assert first.bounds[10] == 2**31 * Fraction(7, 10)
    assert KINDS["logreg"].cohort_slots(a, SCHEMA, plan) == (0, 11, 12, 13, 14)
    totals = (Fraction(100), Fraction(-3, 2), Fraction(11), Fraction(1, 3), Fraction(25),
              Fraction(9), Fraction(5), Fraction(2000), Fraction(40), Fraction(12), Fraction(-60),
              Fraction(40), Fraction(60), Fraction(50), Fraction(50))
    one, two = program.advance(state, totals), program.advance(json.loads(json.dumps(state)),
                                                               totals)
    assert one == two and json.loads(json.dumps(one)) == one
    later = program.round_plan(one)
    assert later.width == 11
    eta = sum(abs(Fraction(b)) * h for b, h in zip(one["beta"], (1, 39, 1), strict=True))
    assert later.bounds[-1] == 2**31 * (eta + Fraction(7, 10))


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "linreg", "y": "sex", "x": ["age"]}, "y", "numeric"),
        ({"kind": "linreg", "y": "sbp", "x": []}, "x", "at least 1"),
        ({"kind": "linreg", "y": "sbp", "x": ["sbp"]}, "x", "outcome 'sbp'"),
        ({"kind": "linreg", "y": "sbp", "x": ["age", "height"]}, "x", "unknown column 'height'"),
        ({"kind": "logreg", "y": "sbp", "x": ["age"]}, "y", "0/1 outcome"),
        ({"kind": "logreg", "y": "bmi", "x": ["age"]}, "y", "0/1 outcome"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "max_iter": 0}, "max_iter", "positive"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "max_iter": 2.5}, "max_iter", "whole"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "max_iter": 5000}, "max_iter",
         "at most 1000"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "tol": 0}, "tol", "positive"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "max_iter": True}, "max_iter", "number"),
        ({"kind": "logreg", "y": "event", "x": ["age"], "tol": "small"}, "tol", "number"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)


def test_three_level_outcome_is_refused() -> None:
    schema = Schema({"o": Column("o", "category", levels=("a", "b", "c")),
                     "x": Column("x", "int", min=0, max=1)})
    with pytest.raises(ConfigError, match="has 3 levels, not 2"):
        analysis({"kind": "logreg", "y": "o", "x": ["x"]}, schema)
