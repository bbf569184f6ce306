"""What the coordinator tells the nodes about a finished study: statuses and digests only."""

from __future__ import annotations

from securecalc.audit.events import digest
from securecalc.coordinator.heads import release_outcomes
from securecalc.core.results import AnalysisResult, Cost, StudyResult


def test_outcomes_name_withheld_analyses_and_cells_without_values() -> None:
    cost = Cost(seconds=0.1, bytes_sent=10)
    results = {
        "m": AnalysisResult("m", "mean", 41.5, 120, cost),
        "small": AnalysisResult("small", "mean", None, None, cost,
                                "withheld: the cohort is smaller than min_cohort (10)"),
        "h": AnalysisResult("h", "histogram", {"edges": [0, 1, 2, 3], "counts": [12, "<5", 7]},
                            24, cost),
        "t": AnalysisResult("t", "crosstab", {"table": {"a": {"x": "<5", "y": "<5"}}}, 0, cost),
    }
    study = StudyResult("s", "ckks", "job", results, cost)
    out = {o.analysis_id: o for o in release_outcomes(study, min_cell_count=5)}
    assert {k: o.status for k, o in out.items()} == {
        "m": "released", "small": "withheld", "h": "partly withheld", "t": "partly withheld"}
    assert out["t"].note == "2 cell(s) below min_cell_count (5) withheld"
    assert out["m"].digest == digest(41.5) and "41.5" not in str(out["m"])
