"""Hospitals refuse a study before anything is computed: roster, min_parties and policy
rules, and operator approval, in process (the same assertions as tests/system/test_roster.py
and test_policy.py did)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from securecalc.errors import PartyError, PolicyError, SecureCalcError
from securecalc.roles import Role
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc.transport.interface import Caller

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c", "hospital-d")
COUNT = '[[analysis]]\nid = "n"\nkind = "count"\n'
NOISY = COUNT + "epsilon = 1.0\n"
POLICY_B = """[policy]
columns = ["age", "sex", "sbp", "arm"]
kinds = ["count", "mean", "variance"]
min_cell_count = 10
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    names = (*HOSPITALS, "hospital-e")
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=len(names), rows=100,
                         seed=3, names=names)
    return dict(zip(names, files, strict=True))


@pytest.fixture
def parties(in_process, cohort):  # type: ignore[no-untyped-def]
    """Four hospitals whose rosters leave out hospital-e (whose own roster has it), and
    hospital-b with a restrictive policy."""
    rosters = {**{h: HOSPITALS for h in HOSPITALS}, "hospital-e": (*HOSPITALS, "hospital-e")}
    return in_process(cohort, rosters=rosters,
                      node_extra={"hospital-b": POLICY_B})


def refusals(parties, name: str, study: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Why ``name`` refused ``study``; fails if it started any job of it."""
    jobs = {e["data"]["job"] for e in parties.events(name, "study_received")
            if e["data"]["study"] == study}
    assert not [e for e in parties.events(name, "job_start") if e["data"]["job"] in jobs]
    return [str(e["data"]["reason"]) for e in parties.events(name, "policy_decision")
            if e["data"]["job"] in jobs and e["data"]["decision"] == "refused"]


def test_a_hospital_outside_the_roster_is_refused(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("stranger", "mpc", SYNTH_SCHEMA_TOML, COUNT,
                          parties=["hospital-a", "hospital-c", "hospital-e"])
    with pytest.raises(PolicyError, match="hospital-e as a party, which is not a hospital in"):
        parties.run(study)
    reasons = [r for h in ("hospital-a", "hospital-c") for r in refusals(parties, h, "stranger")]
    assert reasons and all("hospital-e as a party" in r for r in reasons)


def test_two_hospitals_are_refused_by_default(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("pair", "ckks", SYNTH_SCHEMA_TOML, NOISY,
                          parties=["hospital-a", "hospital-c"])
    with pytest.raises(PolicyError, match="has 2 parties; this node requires min_parties >= 3"):
        parties.run(study)
    assert not parties.events("compute", "contribution")


@pytest.mark.parametrize(("analyses", "extra", "words"), [
    ('[[analysis]]\nid = "x"\nkind = "mean"\ncolumn = "bmi"\n', "", ["column", "bmi"]),
    ('[[analysis]]\nid = "x"\nkind = "std"\ncolumn = "age"\n', "", ["kind", "std"]),
    (COUNT, "min_cell_count = 5\n", ["min_cell_count >= 10"]),
])
def test_policy_refusals_name_the_rule(parties, analyses: str, extra: str,  # type: ignore[no-untyped-def]
                                       words: list[str]) -> None:
    study = parties.study("refused", "mpc", SYNTH_SCHEMA_TOML, analyses, extra_study=extra,
                          parties=["hospital-a", "hospital-b", "hospital-d"])
    with pytest.raises(PolicyError) as info:
        parties.run(study)
    message = str(info.value)
    assert "hospital-b" in message and all(w in message for w in words), message
    assert parties.events("hospital-b", "policy_decision")[-1]["data"]["decision"] == "refused"


def test_only_a_coordinator_certificate_starts_jobs(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("posing", "mpc", SYNTH_SCHEMA_TOML, COUNT,
                          parties=["hospital-a", "hospital-c", "hospital-d"])
    with pytest.raises(PartyError, match="refused: the certificate of hospital-b is a hospital "
                                         "certificate; only a coordinator may make this call"):
        parties.run(study, as_caller=Caller("hospital-b", Role.HOSPITAL))
    for name in ("hospital-a", "hospital-c", "hospital-d"):
        assert not parties.events(name, "study_received")


def test_a_coordinator_certificate_cannot_submit_ciphertexts(in_process, cohort) -> None:  # type: ignore[no-untyped-def]
    """Hospitals whose rosters wrongly list "coordinator", and the coordinator's own node
    (its certificate states the coordinator role): the hospitals refuse its confirmation of
    the job (only a hospital certificate may confirm), so nobody reads a row or submits."""
    pair = ["hospital-a", "hospital-b"]
    roster = [*pair, "coordinator"]
    data = {**{h: cohort[h] for h in pair}, "coordinator": cohort["hospital-c"]}
    parties = in_process(data, rosters={name: roster for name in data},
                         roles={"coordinator": Role.COORDINATOR},
                         node_extra={"coordinator": '[policy]\nmin_parties = 2\n'
                                                    'ckks = "exact"\n'})
    study = parties.study("roles-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY,
                          parties=["hospital-a", "hospital-b", "coordinator"],
                          extra_study="peer_timeout_seconds = 3\n")
    with pytest.raises(SecureCalcError, match="did not confirm holding this job"):
        parties.run(study)
    compute = {e["event"] for e in parties.events("compute")}
    assert "sum_released" not in compute
    sites = {e["data"]["site"] for e in parties.events("compute", "contribution")}
    assert "coordinator" not in sites


@pytest.fixture
def approving(in_process, cohort):  # type: ignore[no-untyped-def]
    """Four hospitals; hospital-c needs its operator's approval of every study."""
    return in_process({h: cohort[h] for h in HOSPITALS},
                      node_extra={"hospital-c": "[policy]\napproval = true\n"})


def approval_study(parties, analyses: str,  # type: ignore[no-untyped-def]
                   names: Sequence[str] = ("hospital-a", "hospital-c", "hospital-d")):
    return parties.study("needs-approval", "mpc", SYNTH_SCHEMA_TOML, analyses, parties=names)


@pytest.mark.timeout(120)
def test_operator_approval(approving) -> None:  # type: ignore[no-untyped-def]
    mean_age = '[[analysis]]\nid = "x"\nkind = "mean"\ncolumn = "age"\n'
    with pytest.raises(PolicyError, match="securecalc node approve") as info:
        approving.run(approval_study(approving, mean_age))
    request_id = str(info.value).split("securecalc node approve ")[1].split("`")[0]
    config = approving.root / "hospital-c.toml"
    cli = [sys.executable, "-m", "securecalc", "node"]
    pending = subprocess.run([*cli, "pending", "--config", str(config)], capture_output=True,
                             text=True)
    assert request_id in pending.stdout and "columns read:   age" in pending.stdout
    assert "engine:         mpc" in pending.stdout
    assert "parties:        hospital-a (" in pending.stdout
    digest = request_id.rsplit("-", 1)[1]
    assert f"digest:         sha256:{digest} (covers everything below)" in pending.stdout
    assert "    - age: int [" in pending.stdout  # the declared schema is covered
    approved = subprocess.run([*cli, "approve", request_id, "--config", str(config)],
                              capture_output=True, text=True)
    assert approved.returncode == 0, approved.stderr
    assert approving.run(approval_study(approving, mean_age)).results["x"].n == 3 * 100
    # asking for something else needs a new approval
    mean_sbp = '[[analysis]]\nid = "x"\nkind = "mean"\ncolumn = "sbp"\n'
    with pytest.raises(PolicyError, match="awaiting approval"):
        approving.run(approval_study(approving, mean_sbp))
    # so does the same study with another party list (here: other MPC party ids)
    reordered = approval_study(approving, mean_age, ("hospital-d", "hospital-c", "hospital-a"))
    with pytest.raises(PolicyError, match="awaiting approval") as again:
        approving.run(reordered)
    assert request_id not in str(again.value)
    assert approving.events("hospital-c", "approval")


def test_nodes_refuse_a_lower_minimum_cohort(parties) -> None:  # type: ignore[no-untyped-def]
    study = parties.study("small-cohorts", "mpc", SYNTH_SCHEMA_TOML,
                          '[[analysis]]\nid = "x"\nkind = "mean"\ncolumn = "age"\n',
                          extra_study="min_cohort = 3\nmin_cell_count = 10\n",
                          parties=["hospital-a", "hospital-b", "hospital-d"])
    with pytest.raises(PolicyError, match="min_cohort >= 10"):
        parties.run(study)
