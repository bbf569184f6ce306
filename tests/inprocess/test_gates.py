"""Issue 9 in process: a patient alone in a level, group or extreme of a passing cohort.
Nothing from which the patient's value follows is released, and each node records what was
released or withheld; the same analyses on cohorts that meet the gates still match the plain
reference (the same data and assertions as tests/system/test_gates.py did)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from securecalc.core.results import AnalysisResult
from securecalc.errors import PolicyError

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
ROWS = 300
SCHEMA = """
[schema.sbp]
type = "int"
min = 80
max = 220

[schema.arm]
type = "category"
levels = ["a", "b", "c"]

[schema.site]
type = "category"
levels = ["lone", "x", "y"]

[schema.treated]
type = "int"
min = 0
max = 1

[schema.outcome]
type = "int"
min = 0
max = 1

[schema.days]
type = "int"
min = 1
max = 100

[schema.event]
type = "int"
min = 0
max = 1

[schema.flagged]
type = "int"
min = 0
max = 1
"""
CATALOGUE = SCHEMA.replace("[schema.", "[catalogue.")  # the nodes offer what the studies read
COLUMNS = ("sbp", "arm", "site", "treated", "outcome", "days", "event", "flagged")


def site_rows(index: int) -> list[dict[str, object]]:
    """300 rows per hospital; hospital-a's first row is the lone patient: arm c, site
    'lone', treated 1, sbp 219, died on day 3. Hospital-b's first row (arm a) is the only
    patient ``flagged``."""
    rng = np.random.default_rng([9, index])
    rows = []
    for i in range(ROWS):
        sbp = int(rng.integers(100, 181))
        rows.append({"sbp": sbp, "arm": "ab"[i % 2], "site": "xy"[(i // 2) % 2],
                     "treated": 0, "outcome": int(rng.random() < 0.3 + (sbp - 100) / 400),
                     "days": int(rng.choice([20, 40, 60, 80, 100])),
                     "event": int(rng.random() < 0.6), "flagged": 0})
    if index == 1:
        rows[0].update(flagged=1)
    if index == 0:
        rows[0].update(sbp=219, arm="c", site="lone", treated=1, outcome=1, days=3, event=1)
    return rows


@pytest.fixture(scope="module")
def data() -> dict[str, list[dict[str, object]]]:
    return {name: site_rows(i) for i, name in enumerate(HOSPITALS)}


@pytest.fixture(scope="module")
def files(tmp_path_factory, data) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("lone")
    out = {}
    for name, rows in data.items():
        out[name] = folder / f"{name}.csv"
        with out[name].open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return out


def nodes(in_process, files, policy: str = ""):  # type: ignore[no-untyped-def]
    """The three hospitals; ckks = "exact": the CKKS runs check the release rules the
    coordinator applies."""
    return in_process(files, catalogue=CATALOGUE, node_extra=dict.fromkeys(
        HOSPITALS, f'[policy]\nckks = "exact"\n{policy}'))


def run(parties, engine: str, analyses: str) -> dict[str, AnalysisResult]:  # type: ignore[no-untyped-def]
    study = parties.study(f"gates-{engine}-{abs(hash(analyses)) % 10**8}", engine, SCHEMA,
                          analyses)
    return parties.run(study).results


def pooled(data, where=lambda row: True) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [row for rows in data.values() for row in rows if where(row)]


def assert_withheld(result: AnalysisResult, *words: str) -> None:
    assert result.value is None and result.n is None
    assert result.note is not None and all(w in result.note for w in words), result.note


REGRESSIONS = """
[[analysis]]
id = "lone_level"
kind = "linreg"
y = "sbp"
x = ["arm"]

[[analysis]]
id = "lone_reference"
kind = "linreg"
y = "sbp"
x = ["site"]

[[analysis]]
id = "lone_binary"
kind = "linreg"
y = "sbp"
x = ["treated"]

[[analysis]]
id = "lone_logit"
kind = "logreg"
y = "outcome"
x = ["arm"]

[[analysis]]
id = "without_lone"
kind = "linreg"
y = "sbp"
x = ["event"]
where = "arm != 'c'"

[[analysis]]
id = "logit_without_lone"
kind = "logreg"
y = "outcome"
x = ["sbp", "event"]
where = "arm != 'c'"
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_a_lone_level_withholds_regressions(in_process, files, data,  # type: ignore[no-untyped-def]
                                            engine: str) -> None:
    results = run(nodes(in_process, files), engine, REGRESSIONS)
    for name in ("lone_level", "lone_reference", "lone_binary", "lone_logit"):
        assert_withheld(results[name], "min_cohort")
    rows = pooled(data, lambda row: row["arm"] != "c")
    sbp = np.array([row["sbp"] for row in rows], dtype=float)
    event = np.array([row["event"] for row in rows], dtype=float)
    design = np.column_stack([np.ones_like(event), event])
    beta = np.linalg.lstsq(design, sbp, rcond=None)[0]
    model = results["without_lone"].value
    assert results["without_lone"].n == 3 * ROWS - 1
    assert model["coefficients"]["(intercept)"]["estimate"] == pytest.approx(beta[0], rel=1e-6)
    assert model["coefficients"]["event"]["estimate"] == pytest.approx(beta[1], rel=1e-6)
    logit = results["logit_without_lone"]
    assert logit.n == 3 * ROWS - 1 and logit.value["converged"]
    assert math.isfinite(logit.value["coefficients"]["sbp"]["estimate"])


OTHERS = """
[[analysis]]
id = "arm_by_outcome"
kind = "crosstab"
row = "arm"
col = "site"

[[analysis]]
id = "n_arm_c"
kind = "count"
where = "arm == 'c'"

[[analysis]]
id = "ab_by_site"
kind = "crosstab"
row = "arm"
col = "site"
where = "arm != 'c'"

[[analysis]]
id = "lone_median"
kind = "median"
column = "sbp"
where = "arm == 'c'"

[[analysis]]
id = "edge_quantiles"
kind = "quantiles"
column = "sbp"
probs = [0.001, 0.25, 0.5, 0.999]

[[analysis]]
id = "lone_curve"
kind = "kaplan_meier"
time = "days"
event = "event"
group = "arm"
grid = [20, 40, 60, 80, 100]

[[analysis]]
id = "lone_test"
kind = "logrank"
time = "days"
event = "event"
group = "arm"
grid = [20, 40, 60, 80, 100]

[[analysis]]
id = "curve"
kind = "kaplan_meier"
time = "days"
event = "event"
grid = [20, 40, 60, 80, 100]
where = "arm != 'c'"

[[analysis]]
id = "lone_treated_rate"
kind = "mean"
column = "treated"

[[analysis]]
id = "outcome_rate"
kind = "mean"
column = "outcome"

[[analysis]]
id = "lone_flag_by_arm"
kind = "ttest"
column = "flagged"
group = "arm"
levels = ["a", "b"]

[[analysis]]
id = "outcome_by_arm"
kind = "ttest"
column = "outcome"
group = "arm"
levels = ["a", "b"]
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_lone_patients_in_tables_order_statistics_and_curves(  # type: ignore[no-untyped-def]
        in_process, files, data, engine: str) -> None:
    results = run(nodes(in_process, files), engine, OTHERS)
    # the count beside the table: nothing to subtract it from
    assert_withheld(results["arm_by_outcome"], "min_cell_count", "merge levels")
    table = results["ab_by_site"].value["table"]
    rows = pooled(data, lambda row: row["arm"] != "c")
    assert table == {arm: {site: sum(1 for r in rows if r["arm"] == arm and r["site"] == site)
                           for site in ("lone", "x", "y")} for arm in ("a", "b", "c")}
    assert results["ab_by_site"].n == len(rows) and results["ab_by_site"].value["chi2"]
    assert_withheld(results["lone_median"], "min_cohort")
    quantiles = results["edge_quantiles"]
    sbp = np.sort([row["sbp"] for row in pooled(data)])
    assert quantiles.n == sbp.size and "0.001, 0.999" in quantiles.note
    assert quantiles.value == {"0.001": None, "0.25": int(sbp[224]), "0.5": int(sbp[449]),
                               "0.999": None}
    assert_withheld(results["lone_test"], "min_cohort", "grid")
    # every group or none: the other groups' n beside a count would give the lone group's size
    assert_withheld(results["lone_curve"], "min_cohort", "grid")
    # the mean of a 0/1 column is a count over n: one treated patient withholds it
    assert_withheld(results["lone_treated_rate"], "min_cell_count", "0/1 column")
    outcomes = [row["outcome"] for row in pooled(data)]
    assert results["outcome_rate"].value == pytest.approx(np.mean(outcomes), rel=1e-9)
    # a t-test of a 0/1 column: in arm a one patient is flagged, so its mean would name them
    assert_withheld(results["lone_flag_by_arm"], "min_cell_count", "0/1 column")
    by_arm = results["outcome_by_arm"].value["mean"]
    for arm in ("a", "b"):
        expected = np.mean([row["outcome"] for row in pooled(data) if row["arm"] == arm])
        assert by_arm[arm] == pytest.approx(expected, rel=1e-9)
    curve = results["curve"].value["groups"]["all"]
    assert [(p["time"], p["at_risk"], p["events"]) for p in curve] == [
        (t, sum(1 for r in rows if r["days"] >= t),
         sum(1 for r in rows if r["days"] == t and r["event"])) for t in (20, 40, 60, 80, 100)]


EXTREMES = """
[[analysis]]
id = "max_sbp"
kind = "max"
column = "sbp"
"""


@pytest.mark.timeout(300)
def test_min_and_max_need_every_node_to_allow_extremes(in_process, files) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="allow_extremes"):
        run(nodes(in_process, files), "mpc", EXTREMES)
    allowing = nodes(in_process, files, "allow_extremes = true\n")
    for engine in ("mpc", "ckks"):
        result = run(allowing, engine, EXTREMES)["max_sbp"]
        assert result.value == 219 and result.n == 3 * ROWS


ANALYSES = """
[[analysis]]
id = "arm_by_outcome"
kind = "crosstab"
row = "arm"
col = "site"

[[analysis]]
id = "ab_by_site"
kind = "crosstab"
row = "arm"
col = "site"
where = "arm != 'c'"

[[analysis]]
id = "lone_median"
kind = "median"
column = "sbp"
where = "arm == 'c'"
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_a_lone_patient_is_withheld_and_the_release_reported(in_process, files, data,  # type: ignore[no-untyped-def]
                                                             engine: str) -> None:
    parties = nodes(in_process, files)
    result = parties.run(parties.study(f"gates-{engine}", engine, SCHEMA, ANALYSES))
    results: dict[str, AnalysisResult] = result.results
    assert_withheld(results["arm_by_outcome"], "min_cell_count", "merge levels")
    assert_withheld(results["lone_median"], "min_cohort")
    table = results["ab_by_site"].value["table"]
    rows = pooled(data, lambda row: row["arm"] != "c")
    assert table == {arm: {site: sum(1 for r in rows if r["arm"] == arm and r["site"] == site)
                           for site in ("lone", "x", "y")} for arm in ("a", "b", "c")}
    for hospital in HOSPITALS:  # every node records the outcome of each analysis, no value
        reported = parties.events(hospital, "release_reported")[-1]["data"]
        assert reported["job"] == result.job_id
        statuses = {o["analysis"]: o["status"] for o in reported["outcomes"]}
        assert statuses == {"arm_by_outcome": "withheld", "ab_by_site": "released",
                            "lone_median": "withheld"}
