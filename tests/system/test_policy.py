"""Hospitals decide what leaves: policy refusals and operator approval, with real nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from securecalc.coordinator.study import run_study
from securecalc.errors import PolicyError
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c", "hospital-d")
POLICY_B = """[policy]
columns = ["age", "sex", "sbp", "arm"]
kinds = ["count", "mean", "variance"]
min_cell_count = 10
"""
APPROVAL_C = "[policy]\napproval = true\n"


def analysis(kind: str, column: str | None = None) -> str:
    return (f'[[analysis]]\nid = "x"\nkind = "{kind}"\n'
            + (f'column = "{column}"\n' if column else ""))


@pytest.fixture(scope="module")
def cluster(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=4, rows=500, seed=5,
                         names=HOSPITALS)
    return cluster_factory(dict(zip(HOSPITALS, files, strict=True)), with_compute=False,
                           node_extra={"hospital-b": POLICY_B, "hospital-c": APPROVAL_C})


def study(cluster, name: str, analyses: str, extra: str = "",  # type: ignore[no-untyped-def]
          restrictive: str = "hospital-b") -> Path:
    """A study on hospital-a, hospital-d (no policy) and one restrictive node."""
    return cluster.study(name, "mpc", SYNTH_SCHEMA_TOML, analyses, extra_study=extra,
                         parties=["hospital-a", restrictive, "hospital-d"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("analyses", "extra", "words"), [
    (analysis("mean", "bmi"), "", ["column", "bmi"]),
    (analysis("std", "age"), "", ["kind", "std"]),
    (analysis("count"), "min_cell_count = 5\n", ["min_cell_count >= 10"]),
])
def test_policy_refusals_name_the_rule(cluster, analyses: str, extra: str,  # type: ignore[no-untyped-def]
                                       words: list[str]) -> None:
    with pytest.raises(PolicyError) as info:
        run_study(study(cluster, "refused", analyses, extra=extra))
    message = str(info.value)
    assert "hospital-b" in message and all(w in message for w in words), message
    log = (cluster.root / "audit" / "hospital-b.jsonl").read_text().splitlines()
    decisions = [json.loads(x)["data"] for x in log if '"policy_decision"' in x]
    assert decisions[-1]["decision"] == "refused"


@pytest.mark.timeout(120)
def test_operator_approval(cluster) -> None:  # type: ignore[no-untyped-def]
    path = study(cluster, "needs-approval", analysis("mean", "age"), restrictive="hospital-c")
    with pytest.raises(PolicyError, match="securecalc node approve") as info:
        run_study(path)
    request_id = str(info.value).split("securecalc node approve ")[1].split("`")[0]
    config = cluster.root / "hospital-c.toml"
    cli = [sys.executable, "-m", "securecalc", "node"]
    pending = subprocess.run([*cli, "pending", "--config", str(config)], capture_output=True,
                             text=True)
    assert request_id in pending.stdout and "columns read:   age" in pending.stdout
    assert "engine:         mpc" in pending.stdout
    assert "parties:        hospital-a, hospital-c, hospital-d" in pending.stdout
    approved = subprocess.run([*cli, "approve", request_id, "--config", str(config)],
                              capture_output=True, text=True)
    assert approved.returncode == 0, approved.stderr
    assert run_study(path).results["x"].n == 1500
    # asking for something else needs a new approval
    changed = study(cluster, "needs-approval", analysis("mean", "sbp"),
                    restrictive="hospital-c")
    with pytest.raises(PolicyError, match="awaiting approval"):
        run_study(changed)
    # so does the same study with another party list (here: other MPC party ids)
    other_parties = cluster.study("needs-approval", "mpc", SYNTH_SCHEMA_TOML,
                                  analysis("mean", "age"),
                                  parties=["hospital-d", "hospital-c", "hospital-a"])
    with pytest.raises(PolicyError, match="awaiting approval") as again:
        run_study(other_parties)
    assert request_id not in str(again.value)
    events = [json.loads(x)["event"] for x in
              (cluster.root / "audit" / "hospital-c.jsonl").read_text().splitlines()]
    assert "approval" in events


@pytest.mark.timeout(60)
def test_nodes_refuse_a_lower_minimum_cohort(cluster) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="min_cohort >= 10"):
        run_study(study(cluster, "small-cohorts", analysis("mean", "age"),
                        extra="min_cohort = 3\nmin_cell_count = 10\n"))
