"""A node's ``allow_extremes``: min and max (quantiles at p = 0 or 1) are single patients'
values, refused unless the node's policy allows them."""

from __future__ import annotations

import pytest

from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.policy import Policy, policy_from_mapping
from securecalc.core.study_model import analysis_from_mapping
from securecalc.errors import ConfigError, PolicyError
from securecalc.synth import synth_schema

SCHEMA = synth_schema()


def job(*raws: dict) -> Job:
    analyses = tuple(analysis_from_mapping({"id": f"a{i}", **raw}, index=i, schema=SCHEMA)
                     for i, raw in enumerate(raws))
    parties = tuple(Party(name, f"127.0.0.1:{5000 + i}") for i, name in enumerate("abc"))
    return Job("s", "j", parties, SCHEMA, analyses)


@pytest.mark.parametrize("raw", [
    {"kind": "min", "column": "age"},
    {"kind": "max", "column": "sbp"},
    {"kind": "quantiles", "column": "age", "probs": [0.5, 1]},
    {"kind": "quantiles", "column": "age", "probs": [0, 0.5]},
])
def test_extremes_need_allow_extremes(raw: dict) -> None:
    with pytest.raises(PolicyError, match=r"\(a1\).*allow_extremes"):
        Policy().check(job({"kind": "median", "column": "age"}, raw))
    Policy(allow_extremes=True).check(job(raw))


def test_other_order_statistics_pass_and_the_key_parses() -> None:
    Policy().check(job({"kind": "quantiles", "column": "age", "probs": [0.01, 0.5, 0.99]}))
    assert policy_from_mapping({"allow_extremes": True}).allow_extremes
    assert not policy_from_mapping({}).allow_extremes
    with pytest.raises(ConfigError, match="true or false"):
        policy_from_mapping({"allow_extremes": "yes"})
