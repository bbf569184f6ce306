"""The statistical catalogue on both engines, through real processes, against the reference
packages on the pooled rows: numpy, scipy, statsmodels, lifelines.

Tolerances: MPC 1e-6 relative for estimates and standard errors (exact for counts, quantiles
of int columns, min, max), CKKS 1e-4; p-values 1e-6 absolute.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from securecalc.coordinator.study import run_study
from securecalc.core.table import load_table
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
ANALYSES = """
[[analysis]]
id = "age_quartiles"
kind = "quantiles"
column = "age"
probs = [0.25, 0.5, 0.75]

[[analysis]]
id = "median_sbp"
kind = "median"
column = "sbp"

[[analysis]]
id = "min_age"
kind = "min"
column = "age"

[[analysis]]
id = "max_followup"
kind = "max"
column = "followup_days"

[[analysis]]
id = "sbp_histogram"
kind = "histogram"
column = "sbp"
edges = [80, 110, 130, 150, 180, 221]

[[analysis]]
id = "arm_by_diabetes"
kind = "crosstab"
row = "arm"
col = "diabetes"

[[analysis]]
id = "sbp_by_arm"
kind = "ttest"
column = "sbp"
group = "arm"
levels = ["a", "b"]

[[analysis]]
id = "correlations"
kind = "correlation"
columns = ["age", "bmi", "sbp"]

[[analysis]]
id = "covariances"
kind = "covariance"
columns = ["age", "sbp"]

[[analysis]]
id = "sbp_model"
kind = "linreg"
y = "sbp"
x = ["age", "bmi", "sex"]

[[analysis]]
id = "diabetes_model"
kind = "logreg"
y = "diabetes"
x = ["age", "bmi"]

[[analysis]]
id = "survival"
kind = "kaplan_meier"
time = "followup_days"
event = "event"
group = "arm"
grid = [30, 90, 180, 365, 730, 1095, 1460, 1825, 2555, 3650]

[[analysis]]
id = "survival_test"
kind = "logrank"
time = "followup_days"
event = "event"
group = "arm"
grid = [30, 90, 180, 365, 730, 1095, 1460, 1825, 2555, 3650]
"""


@pytest.fixture(scope="module")
def catalogue(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=1500, seed=21,
                         names=HOSPITALS)
    # min and max are single patients' values: every node must allow them
    cluster = cluster_factory(dict(zip(HOSPITALS, files, strict=True)), ckks="exact",
                              node_extra=dict.fromkeys(
                                  HOSPITALS, "[policy]\nallow_extremes = true\n"))
    schema = synth_schema()
    tables = [load_table(f, schema) for f in files]
    pooled = {}
    for name in schema.names():
        column = tables[0].column(name)
        values = np.concatenate([t.column(name).values for t in tables])
        missing = np.concatenate([t.column(name).missing for t in tables])
        if schema[name].type == "category":
            levels = np.array(schema[name].levels, dtype=object)
            values = np.where(missing, None, levels[np.clip(values, 0, None)])
        elif column.values.dtype.kind == "f":
            values = np.where(missing, np.nan, values)
        pooled[name] = values
    return cluster, pooled


def run(cluster, engine: str):  # type: ignore[no-untyped-def]
    return run_study(cluster.study(f"catalogue-{engine}", engine, SYNTH_SCHEMA_TOML, ANALYSES,
                                   extra_study="timeout_seconds = 300\n"))


def close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    return abs(got - want) <= max(rel * abs(want), abs_)


def check_all(result, pooled, rel: float) -> None:  # type: ignore[no-untyped-def]
    r = {aid: res.value for aid, res in result.results.items()}
    age, sbp, bmi = pooled["age"].astype(float), pooled["sbp"].astype(float), pooled["bmi"]
    # order statistics: exact on int columns
    for p in (0.25, 0.5, 0.75):
        assert r["age_quartiles"][str(p)] == np.quantile(age, p, method="inverted_cdf")
    assert r["median_sbp"] == np.quantile(sbp, 0.5, method="inverted_cdf")
    assert r["min_age"] == age.min()
    assert r["max_followup"] == pooled["followup_days"].max()
    # histogram and crosstab: exact counts (none below the minimum cell count here)
    counts, _ = np.histogram(sbp, bins=[80, 110, 130, 150, 180, 221])
    assert r["sbp_histogram"]["counts"] == counts.tolist()
    arm, diabetes = pooled["arm"], pooled["diabetes"]
    table = np.array([[np.sum((arm == a) & (diabetes == d)) for d in ("no", "yes")]
                      for a in ("a", "b")])
    assert r["arm_by_diabetes"]["table"] == {a: {d: int(table[i, j]) for j, d in
                                                 enumerate(("no", "yes"))}
                                             for i, a in enumerate(("a", "b"))}
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    assert close(r["arm_by_diabetes"]["chi2"]["statistic"], chi2, rel)
    assert r["arm_by_diabetes"]["chi2"]["dof"] == dof
    assert close(r["arm_by_diabetes"]["chi2"]["p_value"], p_value, 0, 1e-6)
    # Welch t-test
    welch = stats.ttest_ind(sbp[arm == "a"], sbp[arm == "b"], equal_var=False)
    assert close(r["sbp_by_arm"]["t"], welch.statistic, rel)
    assert close(r["sbp_by_arm"]["p_value"], welch.pvalue, 0, 1e-6)
    # correlation / covariance on complete cases
    keep = ~np.isnan(bmi)
    corr = np.corrcoef(np.vstack([age[keep], bmi[keep], sbp[keep]]))
    for i, a in enumerate(("age", "bmi", "sbp")):
        for j, b in enumerate(("age", "bmi", "sbp")):
            assert close(r["correlations"][a][b], corr[i, j], rel, 1e-12)
    cov = np.cov(np.vstack([age, sbp]))
    assert close(r["covariances"]["age"]["sbp"], cov[0, 1], rel)
    # OLS
    import statsmodels.api as sm

    sex_m = (pooled["sex"] == "M").astype(float)
    design = sm.add_constant(np.column_stack([age, bmi, sex_m])[keep])
    ols = sm.OLS(sbp[keep], design).fit()
    names = ["(intercept)", "age", "bmi", "sex[M]"]
    for k, name in enumerate(names):
        coef = r["sbp_model"]["coefficients"][name]
        assert close(coef["estimate"], ols.params[k], rel)
        assert close(coef["se"], ols.bse[k], rel)
        assert close(coef["p_value"], ols.pvalues[k], 0, 1e-6)
    assert close(r["sbp_model"]["r_squared"], ols.rsquared, rel)
    # logistic regression
    y = (diabetes == "yes").astype(float)
    logit = sm.Logit(y[keep], sm.add_constant(np.column_stack([age, bmi])[keep])).fit(disp=0)
    assert r["diabetes_model"]["converged"] is True
    for k, name in enumerate(["(intercept)", "age", "bmi"]):
        coef = r["diabetes_model"]["coefficients"][name]
        assert close(coef["estimate"], logit.params[k], rel)
        assert close(coef["se"], logit.bse[k], rel)
    # Kaplan-Meier and the log-rank test on the coarsened grid (days would fail the cell gate)
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    grid = np.array([30, 90, 180, 365, 730, 1095, 1460, 1825, 2555, 3650])
    time = pooled["followup_days"].astype(float)
    coarse = grid[np.searchsorted(grid, time, side="left")]
    event = pooled["event"].astype(int)
    for level in ("a", "b"):
        mask = arm == level
        fitter = KaplanMeierFitter().fit(coarse[mask], event[mask])
        curve = r["survival"]["groups"][level]
        for point in curve:
            t = point["time"]
            assert close(point["survival"], fitter.survival_function_at_times(t).iloc[0], rel)
            lower = fitter.confidence_interval_.loc[t].iloc[0]
            assert close(point["ci_lower"], lower, rel * 10, 1e-9)
    test = logrank_test(coarse[arm == "a"], coarse[arm == "b"], event[arm == "a"],
                        event[arm == "b"])
    assert close(r["survival_test"]["statistic"], test.test_statistic, rel)
    assert close(r["survival_test"]["p_value"], test.p_value, 0, 1e-6)


@pytest.mark.timeout(300)
def test_catalogue_on_mpc(catalogue) -> None:  # type: ignore[no-untyped-def]
    cluster, pooled = catalogue
    check_all(run(cluster, "mpc"), pooled, 1e-6)


@pytest.mark.timeout(300)
def test_catalogue_on_ckks(catalogue) -> None:  # type: ignore[no-untyped-def]
    cluster, pooled = catalogue
    check_all(run(cluster, "ckks"), pooled, 1e-4)
