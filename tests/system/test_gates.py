"""Issue 9 through real node processes: a patient alone in a level, group or extreme of a
passing cohort. Nothing from which the patient's value follows is released; the same
analyses on cohorts that meet the gates still match the plain reference."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from securecalc.coordinator.study import run_study
from securecalc.core.results import AnalysisResult

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
"""
COLUMNS = ("sbp", "arm", "site", "treated", "outcome", "days", "event")


def site_rows(index: int) -> list[dict[str, object]]:
    """300 rows per hospital; hospital-a's first row is the lone patient: arm c, site
    'lone', treated 1, sbp 219, died on day 3."""
    rng = np.random.default_rng([9, index])
    rows = []
    for i in range(ROWS):
        sbp = int(rng.integers(100, 181))
        rows.append({"sbp": sbp, "arm": "ab"[i % 2], "site": "xy"[(i // 2) % 2],
                     "treated": 0, "outcome": int(rng.random() < 0.3 + (sbp - 100) / 400),
                     "days": int(rng.choice([20, 40, 60, 80, 100])),
                     "event": int(rng.random() < 0.6)})
    if index == 0:
        rows[0].update(sbp=219, arm="c", site="lone", treated=1, outcome=1, days=3, event=1)
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, list[dict[str, object]]]:  # type: ignore[no-untyped-def]
    return {name: site_rows(i) for i, name in enumerate(HOSPITALS)}


@pytest.fixture(scope="module")
def cluster(cluster_factory, tmp_path_factory, data):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("lone")
    files = {}
    for name, rows in data.items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        files[name] = path
    return cluster_factory(files)


def run(cluster, engine: str, analyses: str) -> dict[str, AnalysisResult]:  # type: ignore[no-untyped-def]
    study = cluster.study(f"gates-{engine}-{abs(hash(analyses)) % 10**8}", engine, SCHEMA,
                          analyses)
    return run_study(study).results


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
def test_a_lone_level_withholds_regressions(cluster, data, engine: str) -> None:  # type: ignore[no-untyped-def]
    results = run(cluster, engine, REGRESSIONS)
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
