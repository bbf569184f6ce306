"""The canonical job: two encodings of one job give one digest, two different jobs never do.

A job is built the way a node builds it (decoded and validated through the study model), so
the properties hold for what every hospital digests before the agreement round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecalc.core.canonical import RunParameters, canonical_bytes, canonical_job
from securecalc.core.job import Job
from securecalc.core.party import Party
from securecalc.core.study_model import job_from_mapping

pytestmark = pytest.mark.timeout(120)

COMPUTE = Party("compute", "127.0.0.1:9000")


def honest() -> dict[str, Any]:
    """A job as plain data in the keys the study model validates."""
    return {
        "study": "s", "job_id": "j1",
        "parties": [{"name": n, "address": f"127.0.0.1:{7000 + i}"}
                    for i, n in enumerate(("hospital-a", "hospital-b", "hospital-c"))],
        "schema": {"age": {"type": "int", "min": 18, "max": 95},
                   "cens": {"type": "int", "min": 0, "max": 1},
                   "sex": {"type": "category", "levels": ["F", "M"]}},
        "analyses": [{"id": "m", "kind": "mean", "column": "age", "where": "age >= 30"},
                     {"id": "h", "kind": "histogram", "column": "age",
                      "edges": [18, 40, 60, 95], "epsilon": 0.5},
                     {"id": "r", "kind": "linreg", "y": "age", "x": ["cens", "sex"]}],
        "min_cell_count": 5, "min_cohort": 10,
    }


def job(raw: dict[str, Any]) -> Job:
    return job_from_mapping(raw, "mpc")


def digest(raw: dict[str, Any], engine: str = "mpc", compute: Party | None = None) -> str:
    return canonical_job(job_from_mapping(raw, engine), engine, compute=compute).digest


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


def _swap_parties(raw: dict[str, Any]) -> None:
    raw["parties"][0], raw["parties"][1] = raw["parties"][1], raw["parties"][0]


#: one change each of a field that changes what is computed or released
CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "study name": _set(("study",), "t"),
    "party order": _swap_parties,
    "party address": _set(("parties", 2, "address"), "127.0.0.1:7999"),
    "bound": _set(("schema", "cens", "max"), 2),
    "lower bound": _set(("schema", "age", "min"), 17),
    "levels": _set(("schema", "sex", "levels"), ["F", "M", "U"]),
    "type": _set(("schema", "age", "type"), "float"),
    "filter": _set(("analyses", 0, "where"), "age >= 31"),
    "no filter": lambda raw: raw["analyses"][0].pop("where"),
    "column": _set(("analyses", 0, "column"), "cens"),
    "edges": _set(("analyses", 1, "edges"), [18, 41, 60, 95]),
    "epsilon": _set(("analyses", 1, "epsilon"), 0.25),
    "predictors": _set(("analyses", 2, "x"), ["sex", "cens"]),
    "analysis id": _set(("analyses", 0, "id"), "m2"),
    "min_cell_count": _set(("min_cell_count",), 6),
    "min_cohort": _set(("min_cohort",), 11),
    "analysis order": lambda raw: raw["analyses"].reverse(),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_field_that_changes_the_job_changes_both_digests(change: str) -> None:
    raw = honest()
    CHANGES[change](raw)
    changed = canonical_job(job(raw), "mpc")
    base = canonical_job(job(honest()), "mpc")
    assert changed.digest != base.digest
    assert changed.study_digest != base.study_digest
    assert changed.approval_id != base.approval_id


def test_the_run_changes_the_job_digest_but_not_the_study_digest() -> None:
    base = canonical_job(job(honest()), "mpc")
    raw = honest()
    raw["job_id"] = "j2"
    rerun = canonical_job(job(raw), "mpc")
    assert rerun.digest != base.digest and rerun.study_digest == base.study_digest
    ckks = job_from_mapping(honest(), "ckks")
    one = canonical_job(ckks, "ckks", compute=COMPUTE,
                        run=RunParameters(public_context_sha256="a" * 64, n_values=7))
    two = canonical_job(ckks, "ckks", compute=COMPUTE,
                        run=RunParameters(public_context_sha256="b" * 64, n_values=7))
    assert one.digest != two.digest and one.study_digest == two.study_digest


def test_engine_and_compute_node_are_covered() -> None:
    ckks = digest(honest(), "ckks", COMPUTE)
    assert ckks != digest(honest(), "mpc")
    assert ckks != digest(honest(), "ckks", Party("compute", "127.0.0.1:9001"))
    assert ckks != digest(honest(), "ckks", Party("other", "127.0.0.1:9000"))


def _respelled(raw: dict[str, Any], spaces: int, whole_floats: bool,
               reorder: bool) -> dict[str, Any]:
    """The same job written differently: spaces in the filter, 30 as 30.0, keys reordered."""
    out = copy.deepcopy(raw)
    out["analyses"][0]["where"] = "age" + " " * spaces + ">=" + " " * spaces + "30"
    if whole_floats:
        out["schema"]["age"] = {"type": "int", "min": 18, "max": 95}
        out["analyses"][1]["edges"] = [18.0, 40.0, 60.0, 95.0]
    if reorder:
        out["analyses"] = [dict(reversed(list(a.items()))) for a in out["analyses"]]
        out["schema"] = dict(reversed(list(out["schema"].items())))
    return out


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 3), st.booleans(), st.booleans())
def test_two_encodings_of_one_job_give_one_digest(spaces: int, whole_floats: bool,
                                                  reorder: bool) -> None:
    assert digest(_respelled(honest(), spaces, whole_floats, reorder)) == digest(honest())


@settings(deadline=None, max_examples=80)
@given(st.lists(st.sampled_from(sorted(CHANGES)), min_size=1, max_size=4, unique=True))
def test_any_set_of_changes_gives_another_digest(changes: list[str]) -> None:
    raw = honest()
    for change in changes:
        try:
            CHANGES[change](raw)
        except (KeyError, IndexError):
            return  # an earlier change removed what this one edits
    try:
        changed = digest(raw)
    except Exception:  # noqa: BLE001 - a combination no node would accept: nothing to digest
        return
    assert changed != digest(honest())


def test_canonical_bytes_are_sorted_compact_and_refuse_nan() -> None:
    assert canonical_bytes({"b": 1.0, "a": [2.5, True, None]}) == \
        b'{"a":[2.5,true,null],"b":1}'
    with pytest.raises(ValueError):
        canonical_bytes({"x": float("nan")})


def test_a_run_without_a_canonical_form_is_a_protocol_error() -> None:
    from securecalc.errors import ProtocolError

    ckks = job_from_mapping(honest(), "ckks")
    with pytest.raises(ProtocolError, match="no canonical form"):
        canonical_job(ckks, "ckks", compute=COMPUTE,
                      run=RunParameters(states={"r": {"beta": [float("nan")]}}))
