"""Release gates withhold what would single out a patient, in process: a crosstab with a
cell of one and the median of a cohort of one (the same data and assertions as
tests/system/test_gates.py), and what each node records of the release."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from securecalc.core.results import AnalysisResult
from tests.system.test_gates import (
    CATALOGUE,
    COLUMNS,
    HOSPITALS,
    SCHEMA,
    assert_withheld,
    pooled,
    site_rows,
)

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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_a_lone_patient_is_withheld_and_the_release_reported(in_process, files, data,  # type: ignore[no-untyped-def]
                                                             engine: str) -> None:
    parties = in_process(files, catalogue=CATALOGUE,
                         node_extra={h: '[policy]\nckks = "exact"\n' for h in HOSPITALS})
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
