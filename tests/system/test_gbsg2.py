"""The 11-analysis catalogue study on real clinical data (GBSG2, 686 patients split over three
hospitals) through real node processes with mutual TLS, against numpy, scipy, statsmodels and
lifelines on the pooled rows.

Tolerances: MPC 1e-6 relative on estimates, standard errors and statistics (exact on counts
and on quantiles of int columns); CKKS 1e-4 relative on a subset (moments, correlation,
linear model, Kaplan-Meier); p-values 1e-6 absolute. Every analysis passes the default gates
(min_cohort 10, min_cell_count 5), so none is withheld.
"""

from __future__ import annotations

from typing import Any

import pytest

from securecalc.coordinator.study import run_study
from securecalc_bench.gbsg2 import (
    ANALYSES_TOML,
    CATALOGUE_TOML,
    LINREG_TERMS,
    LOGREG_TERMS,
    PNODES_PROBS,
    SCHEMA_TOML,
    load_rows,
    reference,
    write_nodes,
)

MPC_REL = 1e-6
CKKS_REL = 1e-4
P_ABS = 1e-6


@pytest.fixture(scope="module")
def gbsg2(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    frame = load_rows()
    assert len(frame) == 686
    paths = write_nodes(tmp_path_factory.mktemp("gbsg2"), frame)
    cluster = cluster_factory(paths, ckks="exact", catalogue=CATALOGUE_TOML)
    return cluster, reference(frame)


def run(cluster: Any, engine: str) -> dict[str, Any]:
    result = run_study(cluster.study(f"gbsg2-{engine}", engine, SCHEMA_TOML, ANALYSES_TOML,
                                     extra_study="timeout_seconds = 120\n"))
    assert {aid: r.note for aid, r in result.results.items() if r.note} == {}
    assert result.results["age_mean"].n == 686
    return {aid: r.value for aid, r in result.results.items()}


def close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    return abs(got - want) <= max(rel * abs(want), abs_)


def check_moments(r: dict[str, Any], ref: dict[str, Any], rel: float) -> None:
    assert close(r["age_mean"], ref["age_mean"], rel)
    assert close(r["tsize_variance"], ref["tsize_variance"], rel)
    names = ("age", "tsize", "pnodes")
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert close(r["correlations"][a][b], ref["correlations"][i, j], rel, 1e-12)


def check_linreg(r: dict[str, Any], ref: dict[str, Any], rel: float) -> None:
    ols = ref["tsize_model"]
    model = r["tsize_model"]
    for k, name in enumerate(LINREG_TERMS):
        coef = model["coefficients"][name]
        assert close(coef["estimate"], ols.params[k], rel)
        assert close(coef["se"], ols.bse[k], rel)
        assert close(coef["p_value"], ols.pvalues[k], 0, P_ABS)
    assert close(model["r_squared"], ols.rsquared, rel)


def check_survival(r: dict[str, Any], ref: dict[str, Any], rel: float) -> None:
    for level, fitter in ref["survival"].items():
        curve = r["survival"]["groups"][level]
        assert curve, level
        for point in curve:
            t = point["time"]
            assert close(point["survival"], fitter.survival_function_at_times(t).iloc[0], rel)
            lower, upper = fitter.confidence_interval_.loc[t]
            assert close(point["ci_lower"], lower, rel * 10, 1e-9)
            assert close(point["ci_upper"], upper, rel * 10, 1e-9)


@pytest.mark.timeout(120)
def test_gbsg2_catalogue_on_mpc(gbsg2: tuple[Any, dict[str, Any]]) -> None:
    cluster, ref = gbsg2
    r = run(cluster, "mpc")
    assert set(r) == {"age_mean", "tsize_variance", "pnodes_quantiles", "progrec_median",
                      "grade_by_therapy", "age_by_therapy", "correlations", "tsize_model",
                      "event_model", "survival", "survival_test"}
    check_moments(r, ref, MPC_REL)
    # order statistics of int columns: exact
    assert r["pnodes_quantiles"] == {str(p): ref["pnodes_quantiles"][str(p)]
                                     for p in PNODES_PROBS}
    assert r["progrec_median"] == ref["progrec_median"]
    # crosstab: exact counts, Pearson chi-squared as scipy computes it
    crosstab = ref["grade_by_therapy"]
    assert r["grade_by_therapy"]["table"] == {
        g: {h: int(crosstab["table"][i, j]) for j, h in enumerate(("no", "yes"))}
        for i, g in enumerate(("I", "II", "III"))}
    assert close(r["grade_by_therapy"]["chi2"]["statistic"], crosstab["chi2"], MPC_REL)
    assert r["grade_by_therapy"]["chi2"]["dof"] == crosstab["dof"]
    assert close(r["grade_by_therapy"]["chi2"]["p_value"], crosstab["p_value"], 0, P_ABS)
    # Welch t-test, yes - no
    assert close(r["age_by_therapy"]["t"], ref["age_by_therapy"]["t"], MPC_REL)
    assert close(r["age_by_therapy"]["p_value"], ref["age_by_therapy"]["p_value"], 0, P_ABS)
    check_linreg(r, ref, MPC_REL)
    logit = ref["event_model"]
    assert r["event_model"]["converged"] is True
    for k, name in enumerate(LOGREG_TERMS):
        coef = r["event_model"]["coefficients"][name]
        assert close(coef["estimate"], logit.params[k], MPC_REL)
        assert close(coef["se"], logit.bse[k], MPC_REL)
        assert close(coef["p_value"], logit.pvalues[k], 0, P_ABS)
    assert close(r["event_model"]["log_likelihood"], logit.llf, MPC_REL)
    check_survival(r, ref, MPC_REL)
    test = ref["survival_test"]
    assert close(r["survival_test"]["statistic"], test.test_statistic, MPC_REL)
    assert close(r["survival_test"]["p_value"], test.p_value, 0, P_ABS)


@pytest.mark.timeout(120)
def test_gbsg2_subset_on_ckks(gbsg2: tuple[Any, dict[str, Any]]) -> None:
    cluster, ref = gbsg2
    r = run(cluster, "ckks")
    check_moments(r, ref, CKKS_REL)
    check_linreg(r, ref, CKKS_REL)
    check_survival(r, ref, CKKS_REL)
