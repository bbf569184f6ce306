"""Who takes part is the node's choice: roster, minimum parties, compute node, CKKS mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securecalc.core.canonical import canonical_job
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.policy import Policy, Roster, describe_request
from securecalc.core.schema import schema_from_mapping
from securecalc.core.study_model import parse_analyses
from securecalc.errors import PolicyError

pytestmark = pytest.mark.timeout(30)

ROSTER = Roster(me="a", hospitals=frozenset({"a", "b", "c", "d"}), compute="compute")
SCHEMA = schema_from_mapping({"age": {"type": "int", "min": 0, "max": 120}})


def job(parties: str = "abc", epsilon: float | None = None) -> Job:
    raw = {"id": "m", "kind": "mean", "column": "age"}
    if epsilon is not None:
        raw["epsilon"] = epsilon
    return Job(study="s", job_id="j", parties=tuple(Party(p, f"h:{i}") for i, p in
                                                   enumerate(parties)),
               schema=SCHEMA, analyses=parse_analyses([raw], SCHEMA))


@pytest.mark.parametrize(("policy", "parties", "engine", "compute", "words"), [
    (Policy(), "bcd", "mpc", None, "a is not among its parties"),
    (Policy(), "abx", "mpc", None, "lists x as a party, which is not a hospital in a's roster"),
    (Policy(min_parties=4), "abc", "mpc", None, "has 3 parties; this node requires "
                                                "min_parties >= 4"),
    (Policy(), "ab", "ckks", "compute", "min_parties >= 3"),
    (Policy(require_all_hospitals=True), "abc", "mpc", None, "leaves out d"),
    (Policy(), "abc", "ckks", "coordinator", "sends ciphertexts to 'coordinator'"),
    (Policy(ckks="refuse"), "abc", "ckks", "compute", 'ckks = \\"refuse\\"'),
    (Policy(), "abc", "ckks", "compute", "exact CKKS results of m"),
])
def test_refusals(policy: Policy, parties: str, engine: str, compute: str | None,
                  words: str) -> None:
    with pytest.raises(PolicyError, match=words):
        policy.check_parties(job(parties), engine, compute, ROSTER)


def test_accepted() -> None:
    Policy().check_parties(job("abc"), "mpc", None, ROSTER)
    Policy().check_parties(job("abc", epsilon=1.0), "ckks", "compute", ROSTER)
    Policy(ckks="exact").check_parties(job("abc"), "ckks", "compute", ROSTER)
    Policy(min_parties=2).check_parties(job("ab", epsilon=1.0), "ckks", "compute", ROSTER)
    Policy(require_all_hospitals=True).check_parties(job("abcd"), "mpc", None, ROSTER)


def approval_id(job: Job, engine: str, compute: str | None) -> str:
    node = None if compute is None else Party(compute, "h:9")
    return canonical_job(job, engine, compute=node).approval_id


def test_the_approval_id_covers_engine_parties_and_compute_but_not_the_run() -> None:
    base = approval_id(job("abc"), "ckks", "compute")
    assert approval_id(job("abc"), "ckks", "compute") == base
    assert approval_id(job("abd"), "ckks", "compute") != base
    assert approval_id(job("abc"), "ckks", "other") != base
    assert approval_id(job("abc"), "mpc", None) != base
    canonical = canonical_job(job("abc"), "ckks", compute=Party("compute", "h:9"))
    shown = describe_request(job("abc"), canonical)
    assert shown["id"] == base and shown["digest"] == canonical.study_digest
    covers = shown["covers"]
    assert (covers["engine"], [p["name"] for p in covers["parties"]],
            covers["compute"]["name"]) == ("ckks", ["a", "b", "c"], "compute")
    assert approval_id(replace(job("abc"), job_id="other-run"), "ckks", "compute") == base


def test_ckks_needs_a_pinned_compute_node() -> None:
    """A node sends ciphertexts only to a key it pinned: without a pin for its compute node
    it refuses every CKKS study before anything is read."""
    unpinned = Roster(me="a", hospitals=ROSTER.hospitals, compute="compute",
                      compute_pinned=False)
    with pytest.raises(PolicyError, match="no key pin for its compute node 'compute'"):
        Policy(ckks="exact").check_parties(job("abc"), "ckks", "compute", unpinned)
    Policy(ckks="exact").check_parties(job("abc"), "mpc", None, unpinned)  # MPC unaffected
