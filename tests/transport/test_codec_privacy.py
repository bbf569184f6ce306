"""Epsilon travels with a job, and a node re-validates it: a coordinator cannot slip noise-free
kinds, zero or huge epsilons past a node by editing the wire form."""

from __future__ import annotations

import json

import pytest

from securecalc.core.analyses import Analysis
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.errors import ConfigError
from securecalc.synth import synth_schema
from securecalc.transport.codec import job_from_proto, job_to_proto


def job(*analyses: Analysis) -> Job:
    parties = tuple(Party(f"hospital-{c}", f"127.0.0.1:{5000 + i}")
                    for i, c in enumerate("abc"))
    return Job("s", "j1", parties, synth_schema(), analyses)


def test_epsilon_round_trips() -> None:
    sent = job(Analysis("m", "mean", "age", epsilon=0.25), Analysis("n", "count"))
    got = job_from_proto(job_to_proto(sent), "mpc")
    assert [a.epsilon for a in got.analyses] == [0.25, None]
    assert got.epsilon == 0.25


@pytest.mark.parametrize(("kind", "column", "epsilon", "words"), [
    ("median", "age", 0.5, "cannot be released with differential privacy"),
    ("mean", "age", 0, "must be a number in (0, 10]"),
    ("mean", "age", 1e6, "must be a number in (0, 10]"),
    ("mean", "age", "0.5", "must be a number"),
])
def test_a_tampered_epsilon_is_refused(kind: str, column: str, epsilon: object,
                                       words: str) -> None:
    spec = job_to_proto(job(Analysis("x", "mean", "age", epsilon=0.5)))
    table = json.loads(spec.analyses[0].table_json)
    table.update(kind=kind, column=column, epsilon=epsilon)
    spec.analyses[0].table_json = json.dumps(table)
    spec.analyses[0].kind = kind
    with pytest.raises(ConfigError) as info:
        job_from_proto(spec, "mpc")
    assert words in str(info.value)
