"""Hospitals refuse a study before anything is computed: roster, min_parties and policy
rules, in process (the same assertions as tests/system/test_roster.py and test_policy.py)."""

from __future__ import annotations

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
    (its certificate states the coordinator role): the compute node refuses its part."""
    pair = ["hospital-a", "hospital-b"]
    roster = [*pair, "coordinator"]
    data = {**{h: cohort[h] for h in pair}, "coordinator": cohort["hospital-c"]}
    parties = in_process(data, rosters={name: roster for name in data},
                         roles={"coordinator": Role.COORDINATOR},
                         node_extra={"coordinator": '[policy]\nmin_parties = 2\n'
                                                    'ckks = "exact"\n'})
    study = parties.study("roles-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY,
                          parties=["hospital-a", "hospital-b", "coordinator"])
    with pytest.raises(SecureCalcError, match="the certificate of coordinator is a coordinator "
                                              "certificate; only a hospital"):
        parties.run(study)
    compute = {e["event"] for e in parties.events("compute")}
    assert "job_open" in compute and "sum_released" not in compute
    sites = {e["data"]["site"] for e in parties.events("compute", "contribution")}
    assert "coordinator" not in sites
