"""An untrusted coordinator picks the parties, in process: it lists its own node (its
certificate states the coordinator role) as a party, or a subset of hospitals a node requires
whole, or asks a default node for exact CKKS results. The hospitals' own configuration refuses
each before anything is computed (the same assertions as tests/system/test_roster.py did; the
real-process tests remain for what TLS shows: a compute server proving its name, MPC streams
from a coordinator certificate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securecalc.errors import PolicyError
from securecalc.roles import Role
from securecalc.studyfolder import write
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c", "hospital-d")
ROWS = 300
COUNT = '[[analysis]]\nid = "n"\nkind = "count"\n'
MEAN = '[[analysis]]\nid = "age"\nkind = "mean"\ncolumn = "age"\n'
NOISY = COUNT + "epsilon = 1.0\n"
QUICK = "peer_timeout_seconds = 5\ntimeout_seconds = 30\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cohort")
    files = dict(zip(HOSPITALS, write_cohort(folder, sites=len(HOSPITALS), rows=ROWS, seed=3,
                                             names=HOSPITALS), strict=True))
    header = files["hospital-a"].read_text().splitlines()[0]
    return {**files, "coordinator": write(folder / "empty.csv", header + "\n")}


@pytest.fixture
def parties(in_process, cohort):  # type: ignore[no-untyped-def]
    """Four hospitals with default rosters (hospital-d requires all of them), a compute node,
    and the coordinator's own party node: an empty data file, a policy that accepts anything
    (so only the hospitals refuse) and an audit log apart from the coordinator's own."""
    return in_process(
        cohort, roles={"coordinator": Role.COORDINATOR},
        rosters={**{h: HOSPITALS for h in HOSPITALS}, "coordinator": [*HOSPITALS, "coordinator"]},
        node_extra={"hospital-d": "[policy]\nrequire_all_hospitals = true\n",
                    "coordinator": '[policy]\nmin_parties = 2\nckks = "exact"\n\n'
                                   '[audit]\nlog = "audit/coordinator-node.jsonl"\n'})


def refusals(parties, name: str, study: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Why ``name`` refused ``study``; fails if it started any job of it. (The first refusal
    cancels the coordinator's other calls, so another node may never have seen the study.)"""
    jobs = {e["data"]["job"] for e in parties.events(name, "study_received")
            if e["data"]["study"] == study}
    assert not [e for e in parties.events(name, "job_start") if e["data"]["job"] in jobs]
    return [str(e["data"]["reason"]) for e in parties.events(name, "policy_decision")
            if e["data"]["job"] in jobs]


def test_the_coordinator_cannot_be_an_mpc_party(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("self-mpc", "mpc", SYNTH_SCHEMA_TOML, MEAN, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b", "coordinator"])
    with pytest.raises(PolicyError, match="coordinator as a party, which is not a hospital in"):
        parties.run(study)
    reasons = [r for h in ("hospital-a", "hospital-b") for r in refusals(parties, h, "self-mpc")]
    assert reasons and all("coordinator as a party" in r for r in reasons)


def test_the_coordinator_cannot_be_a_ckks_party(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("self-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY, extra_study=QUICK,
                          parties=["hospital-b", "coordinator"])
    with pytest.raises(PolicyError, match="hospital-b.*coordinator as a party"):
        parties.run(study)
    assert not [e for e in parties.events("compute", "contribution")
                if e["data"]["site"] == "hospital-b"]


@pytest.mark.timeout(90)
def test_require_all_hospitals_refuses_a_subset(parties) -> None:  # type: ignore[no-untyped-def]
    subset = parties.study("subset", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                           parties=["hospital-a", "hospital-b", "hospital-d"])
    with pytest.raises(PolicyError, match="hospital-d.*leaves out hospital-c.*"
                                          "require_all_hospitals"):
        parties.run(subset)
    everyone = parties.study("everyone", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                             parties=list(HOSPITALS))
    assert parties.run(everyone).results["n"].value == ROWS * len(HOSPITALS)


@pytest.mark.timeout(90)
def test_ckks_needs_epsilon_on_a_default_node(parties) -> None:  # type: ignore[no-untyped-def]
    names = ["hospital-a", "hospital-b", "hospital-c"]
    exact = parties.study("exact-ckks", "ckks", SYNTH_SCHEMA_TOML, MEAN, parties=names)
    with pytest.raises(PolicyError, match='exact CKKS results of age.*ckks = "epsilon"'):
        parties.run(exact)
    noisy = parties.study("noisy-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY, parties=names)
    assert abs(parties.run(noisy).results["n"].value - 900) < 200
