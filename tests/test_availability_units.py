"""The availability rules as plain code: the ledger's strict lines and charge order, open
jobs per coordinator and their deadlines, the refusal quota, bounded release notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from securecalc.audit.events import bounded_note
from securecalc.audit.log import AuditLog
from securecalc.compute.open_jobs import ComputeJobs
from securecalc.engines.ckks import KeyHolder, Layout
from securecalc.errors import ConfigError, StorageError
from securecalc.node.privacy_ledger import PrivacyLedger
from securecalc.node.refusals import RefusalLog

GOOD = '{"epsilon": "0.5", "job": "j", "study": "s", "time": "t"}\n'


@pytest.mark.parametrize("epsilon", ['"1e400"', '"NaN"', '"-1"', "0.5", '"inf"', '"1/3"'])
def test_a_ledger_line_that_is_not_a_charge_as_written_is_damage(tmp_path: Path,
                                                                  epsilon: str) -> None:
    path = tmp_path / "ledger.jsonl"
    text = GOOD + GOOD.replace('"0.5"', epsilon)
    path.write_text(text)
    with pytest.raises(ConfigError, match="line 2 is not a ledger entry") as info:
        PrivacyLedger(path).recover()
    assert str(path) in str(info.value)
    assert path.read_text() == text


def test_a_charge_whose_audit_record_fails_is_not_charged(tmp_path: Path) -> None:
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")

    def failing(_charge: object) -> None:
        raise StorageError("disk full")

    with pytest.raises(StorageError):
        ledger.charge(study="s", job_id="j", epsilon=0.5, study_budget=None,
                      total_budget=None, record=failing)
    assert ledger.spent() == 0
    seen: list[object] = []
    ledger.charge(study="s", job_id="k", epsilon=0.5, study_budget=None, total_budget=None,
                  record=seen.append)
    assert len(seen) == 1 and ledger.spent() == 0.5


def test_open_jobs_are_bounded_per_coordinator_and_close_at_their_deadline() -> None:
    now = [0.0]
    jobs = ComputeJobs(clock=lambda: now[0])
    holder = KeyHolder.create()
    layout, context = Layout(5, holder.params), holder.params_context_bytes()
    for i in range(16):
        jobs.open(f"a{i}", ("x", "y"), layout, context, coordinator="a", lifetime_seconds=10)
    with pytest.raises(ConfigError, match="the limit is 16 per coordinator"):
        jobs.open("a16", ("x", "y"), layout, context, coordinator="a", lifetime_seconds=10)
    jobs.open("b0", ("x", "y"), layout, context, coordinator="b", lifetime_seconds=1e9)
    now[0] = 11.0
    with pytest.raises(ConfigError, match="unknown job"):
        jobs.layout("a0")
    jobs.open("a16", ("x", "y"), layout, context, coordinator="a", lifetime_seconds=10)
    now[0] = 3599.0
    assert jobs.layout("b0") == layout  # capped at an hour, not 1e9 s
    now[0] = 3601.0
    with pytest.raises(ConfigError, match="unknown job"):
        jobs.layout("b0")


def test_refusals_beyond_the_quota_are_counted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", party="hospital-a")
    now = [0.0]
    refusals = RefusalLog(log, per_hour=3, clock=lambda: now[0])
    written = [refusals.record("lead", [("study_refused", {"job": str(i)})])
               for i in range(5)]
    assert written == [True, True, True, False, False]
    assert refusals.record("other", [("study_refused", {"job": "o"})])
    now[0] = 3600.0
    assert refusals.record("lead", [("study_refused", {"job": "late"})])
    events = [line for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert sum('"refusals_suppressed"' in e for e in events) == 1
    assert '"count": 2' in next(e for e in events if "refusals_suppressed" in e)


def test_a_long_note_is_cut_with_its_length_and_digest() -> None:
    assert bounded_note("short") == "short"
    cut = bounded_note("x" * 5000)
    assert len(cut) <= 1024 and "[5000 characters, sha256 " in cut


def test_a_refusal_record_keeps_the_jobs_canonical_digest() -> None:
    from securecalc.node.refusals import short_received

    received = {"job": "j", "digest": "a" * 64, "study_digest": "b" * 64,
                "parties": ["x"] * 40, "analyses": [{"id": "m"}] * 3}
    short = short_received(received)
    assert short["digest"] == "a" * 64 and short["study_digest"] == "b" * 64
    assert short["n_parties"] == 40 and len(short["parties"]) == 16 and short["analyses"] == 3
    assert len(short["record_digest"]) == 64
