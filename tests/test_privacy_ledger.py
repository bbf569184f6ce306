"""The node's privacy ledger: charges before computing, refuses overspending, survives
restarts and concurrent studies, fails closed when damaged, writes a charge whole or not at
all, and moves a torn last line aside."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
from fractions import Fraction
from pathlib import Path

import pytest

from securecalc.audit.durable import FileOps
from securecalc.errors import ConfigError, PolicyError, StorageError
from securecalc.node.privacy_ledger import PrivacyLedger
from tests.test_audit_durability import failing, half_then, raises


def test_charges_add_up_per_study_and_in_total(tmp_path: Path) -> None:
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")
    first = ledger.charge(study="s1", job_id="j1", epsilon=0.1, study_budget=1.0,
                          total_budget=None)
    ledger.charge(study="s1", job_id="j2", epsilon=0.2, study_budget=1.0, total_budget=None)
    last = ledger.charge(study="s2", job_id="j3", epsilon=0.7, study_budget=1.0,
                         total_budget=None)
    assert first.study_spent == Fraction(1, 10)
    assert ledger.spent("s1") == Fraction(3, 10)  # exact: 0.1 + 0.2 is not 0.30000000000000004
    assert last.total_spent == ledger.spent() == 1
    assert '"epsilon": "0.1"' in (tmp_path / "ledger.jsonl").read_text()


def test_a_run_beyond_the_study_budget_is_refused_and_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = PrivacyLedger(path)
    for job in ("a", "b", "c"):
        ledger.charge(study="s", job_id=job, epsilon=0.3, study_budget=1.0, total_budget=None)
    before = path.read_bytes()
    with pytest.raises(PolicyError, match=r"epsilon 0.3 on top of the 0.9.*allows 1 per study"):
        ledger.charge(study="s", job_id="d", epsilon=0.3, study_budget=1.0, total_budget=None)
    assert path.read_bytes() == before
    ledger.charge(study="s", job_id="e", epsilon=0.1, study_budget=1.0, total_budget=None)
    assert ledger.spent("s") == 1  # exactly at the budget is allowed


def test_the_total_budget_spans_studies(tmp_path: Path) -> None:
    ledger = PrivacyLedger(tmp_path / "ledger.jsonl")
    ledger.charge(study="s1", job_id="a", epsilon=1.5, study_budget=2.0, total_budget=2.0)
    with pytest.raises(PolicyError, match="dp_total_budget"):
        ledger.charge(study="s2", job_id="b", epsilon=1.0, study_budget=2.0, total_budget=2.0)


def test_the_account_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.jsonl"
    PrivacyLedger(path).charge(study="s", job_id="a", epsilon=0.8, study_budget=1.0,
                               total_budget=None)
    with pytest.raises(PolicyError):  # a new object, as after a node restart
        PrivacyLedger(path).charge(study="s", job_id="b", epsilon=0.5, study_budget=1.0,
                                   total_budget=None)


def _charge(path: str, job: str) -> bool:
    try:
        PrivacyLedger(Path(path)).charge(study="s", job_id=job, epsilon=0.3, study_budget=1.0,
                                         total_budget=None)
        return True
    except PolicyError:
        return False


def test_concurrent_processes_cannot_overspend(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.jsonl")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.starmap(_charge, [(path, f"j{i}") for i in range(8)])
    assert sum(outcomes) == 3
    assert PrivacyLedger(Path(path)).spent("s") == Fraction(9, 10)


def test_a_damaged_ledger_refuses_every_charge(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = PrivacyLedger(path)
    ledger.charge(study="s", job_id="a", epsilon=0.1, study_budget=None, total_budget=None)
    with path.open("a") as f:
        f.write('{"study": "s", "epsilon": "-5"}\n')
    with pytest.raises(ConfigError, match="line 2 is not a ledger entry"):
        ledger.charge(study="t", job_id="b", epsilon=0.1, study_budget=None, total_budget=None)


def _charge_one(ledger: PrivacyLedger, job: str) -> None:
    ledger.charge(study="s", job_id=job, epsilon=0.1, study_budget=1.0, total_budget=None)


@pytest.mark.parametrize(("ops", "says"), [
    (failing(write=half_then(errno.ENOSPC)), "the disk is full"),
    (failing(fsync=raises(errno.EIO)), "the disk is failing"),
], ids=["enospc-after-a-short-write", "eio-on-fsync"])
def test_a_charge_that_cannot_be_written_is_not_recorded(tmp_path: Path, ops: FileOps,
                                                         says: str) -> None:
    path = tmp_path / "ledger.jsonl"
    _charge_one(PrivacyLedger(path), "a")
    before = path.read_bytes()
    with pytest.raises(StorageError, match=f"privacy ledger cannot be written: {says}"):
        _charge_one(PrivacyLedger(path, ops=ops), "b")
    assert path.read_bytes() == before
    _charge_one(PrivacyLedger(path), "c")  # space freed: charges work again
    assert PrivacyLedger(path).spent("s") == Fraction(2, 10)


def test_a_short_write_is_resumed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = PrivacyLedger(path, ops=failing(write=lambda fd, data: os.write(fd, bytes(data[:7]))))
    _charge_one(ledger, "a")
    _charge_one(ledger, "b")
    assert ledger.spent("s") == Fraction(2, 10) and len(path.read_text().splitlines()) == 2


def test_a_torn_last_line_is_quarantined(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.jsonl"
    _charge_one(PrivacyLedger(path), "a")
    torn = b'{"epsilon": "0.9", "job": "b", "stu'
    with path.open("ab") as f:  # a crash before the charge's fsync: its run never computed
        f.write(torn)
    with caplog.at_level(logging.WARNING):
        moved = PrivacyLedger(path).recover()
    assert moved is not None and moved.path.read_bytes() == torn and moved.size == len(torn)
    assert str(path) in caplog.text and str(moved.path) in caplog.text
    assert PrivacyLedger(path).recover() is None
    _charge_one(PrivacyLedger(path), "c")
    assert PrivacyLedger(path).spent("s") == Fraction(2, 10)


def test_a_torn_line_found_by_a_charge_is_moved_aside_first(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    _charge_one(PrivacyLedger(path), "a")
    with path.open("ab") as f:
        f.write(b'{"epsilon": "0.')
    _charge_one(PrivacyLedger(path), "b")
    assert PrivacyLedger(path).spent("s") == Fraction(2, 10)
    assert len(list(tmp_path.glob("ledger.jsonl.torn-*"))) == 1
