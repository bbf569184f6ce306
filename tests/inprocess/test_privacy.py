"""Differential privacy in process: noisy releases on both engines, budgets kept in each
node's ledger across runs and restarts (the node opened again from its config), and refusals
before any computation (the same assertions as tests/system/test_privacy.py did)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from securecalc.core.table import load_table
from securecalc.errors import PolicyError
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
BUDGET_B = "[policy]\ndp_budget = 1.0\n"
NOISY = """
[[analysis]]
id = "n"
kind = "count"
epsilon = 0.2

[[analysis]]
id = "age"
kind = "mean"
column = "age"
epsilon = 0.2

[[analysis]]
id = "ages"
kind = "histogram"
column = "age"
edges = [18, 40, 60, 80, 95]
epsilon = 0.1
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):  # type: ignore[no-untyped-def]
    return write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=500, seed=9,
                        names=HOSPITALS)


@pytest.fixture
def cluster(in_process, cohort):  # type: ignore[no-untyped-def]
    return in_process(dict(zip(HOSPITALS, cohort, strict=True)),
                      node_extra={"hospital-b": BUDGET_B})


def pooled_ages(cohort) -> np.ndarray:  # type: ignore[no-untyped-def]
    schema = synth_schema()
    return np.concatenate([load_table(p, schema).column("age").values for p in cohort])


@pytest.mark.timeout(240)
def test_noisy_releases_and_a_budget_that_survives_restarts(cluster, cohort) -> None:  # type: ignore[no-untyped-def]
    ages = pooled_ages(cohort)
    counts = np.histogram(ages, bins=[18, 40, 60, 80, 95])[0]
    released = []
    for engine in ("mpc", "ckks"):  # 0.5 each: the study spends 1.0 of hospital-b's 1.0
        result = cluster.run(cluster.study("dp-study", engine, SYNTH_SCHEMA_TOML, NOISY))
        r = result.results
        sd_n = math.sqrt(2 * 3) * 1 / 0.2  # 3 shares of scale 1 / epsilon
        assert abs(r["n"].value - len(ages)) <= 10 * sd_n, (engine, r["n"].value)
        sd_s = math.sqrt(2 * 3) * 2 * 38.5 / 0.2  # a row moves n and S; |age - 56.5| <= 38.5
        assert abs(r["age"].value - ages.mean()) <= 10 * sd_s / len(ages), engine
        assert "differentially private (epsilon = 0.2)" in r["age"].note
        noisy_counts = r["ages"].value["counts"]
        for got, true in zip(noisy_counts, counts, strict=True):
            assert got == "<5" or abs(got - true) <= 10 * math.sqrt(6) / 0.1, (engine, got)
        released.append((r["n"].value, r["age"].value, *noisy_counts))
    exact = (len(ages), float(ages.mean()), *(int(c) for c in counts))
    assert all(run != exact for run in released)  # noise was added (all exact: p < 1e-6)

    with pytest.raises(PolicyError, match=r"hospital-b.*on top of the 1 it has spent"):
        cluster.run(cluster.study("dp-study", "mpc", SYNTH_SCHEMA_TOML, NOISY))
    events = cluster.events("hospital-b")
    assert events[-1]["event"] == "policy_decision" and events[-1]["data"]["decision"] == \
        "refused"  # refused before any job started
    charges = [e["data"]["epsilon"] for e in events if e["event"] == "privacy_charge"]
    assert charges == [0.5, 0.5]

    cluster.restart("hospital-b")  # the ledger is on disk
    with pytest.raises(PolicyError, match="on top of the 1 it has spent"):
        cluster.run(cluster.study("dp-study", "ckks", SYNTH_SCHEMA_TOML, NOISY))
    ledger = cluster.root / "privacy-ledger" / "hospital-b.jsonl"
    assert [json.loads(x)["epsilon"] for x in ledger.read_text().splitlines()] == ["0.5", "0.5"]
    shown = subprocess.run([sys.executable, "-m", "securecalc", "node", "budget", "--config",
                            str(cluster.root / "hospital-b.toml")], capture_output=True,
                           text=True, check=True).stdout
    assert "dp-study: epsilon 1 spent (left: 0)" in shown and "total spent: 1" in shown


@pytest.mark.timeout(60)
def test_a_dp_node_refuses_exact_results_and_oversized_runs(cluster) -> None:  # type: ignore[no-untyped-def]
    exact = '[[analysis]]\nid = "m"\nkind = "mean"\ncolumn = "age"\n'
    with pytest.raises(PolicyError, match="hospital-b.*only differentially private"):
        cluster.run(cluster.study("exact", "mpc", SYNTH_SCHEMA_TOML, exact))
    greedy = exact + "epsilon = 1.5\n"
    with pytest.raises(PolicyError, match="epsilon above 1 in m; this node allows at most 1 "
                                          r"per analysis \(policy.max_epsilon\)"):
        cluster.run(cluster.study("greedy", "mpc", SYNTH_SCHEMA_TOML, greedy))
    two = (exact + "epsilon = 0.75\n" + exact.replace('"m"', '"m2"') + "epsilon = 0.75\n")
    with pytest.raises(PolicyError, match="epsilon 1.5 in one run; this node allows 1"):
        cluster.run(cluster.study("greedy-2", "mpc", SYNTH_SCHEMA_TOML, two))
