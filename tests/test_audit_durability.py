"""The audit log never becomes unreadable: records of any size, appends that land whole or
not at all (short writes, a full or failing disk), and torn tails moved aside at start."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from securecalc.audit.durable import FileOps
from securecalc.audit.events import signed_head
from securecalc.audit.log import AuditLog
from securecalc.audit.verify import verify_log
from securecalc.errors import ConfigError, StorageError
from securecalc.pki import init_pki

pytestmark = pytest.mark.timeout(60)

BIG = [{"id": f"count_{i:04d}", "kind": "count", "columns": [], "where": None}
       for i in range(1500)]  # about 90 KiB, like the study_received of 1,500 counts


def filled(path: Path, events: int = 3, **kw: object) -> AuditLog:
    log = AuditLog(path, party="hospital-a", **kw)  # type: ignore[arg-type]
    for i in range(events):
        log.append("job_end", job=f"j{i}")
    return log


def failing(*, write: Callable[[int, bytes | memoryview], int] = os.write,
            fsync: Callable[[int], None] = os.fsync,
            ftruncate: Callable[[int, int], None] = os.ftruncate) -> FileOps:
    return FileOps(write=write, fsync=fsync, ftruncate=ftruncate)


def half_then(code: int) -> Callable[[int, bytes | memoryview], int]:
    """A write that lands half its bytes, then fails with ``code`` (a disk filling up)."""
    calls = []

    def write(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))
    return write


def raises(code: int) -> Callable[..., None]:
    def call(*_: object) -> None:
        raise OSError(code, os.strerror(code))
    return call


def cli_verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", "audit", "verify", str(path)],
                          capture_output=True, text=True)


def test_records_larger_than_64_kib_are_appended_and_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = filled(path)
    record = log.append("study_received", job="big", analyses=BIG)
    assert len(path.read_bytes().splitlines()[-1]) > 64 * 1024
    huge = log.append("study_received", job="huge", analyses=BIG * 20)  # > 1 MiB
    assert log.head == (5, huge["hash"]) and record["seq"] == 4
    reopened = AuditLog(path, party="hospital-a")  # as after a restart
    assert reopened.recover() is None
    reopened.append("job_end", job="after")
    report = verify_log(path)
    assert report.ok and report.torn == 0 and len(report.records) == 6
    assert cli_verify(path).returncode == 0


def test_a_short_write_is_resumed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = filled(path, ops=failing(write=lambda fd, data: os.write(fd, bytes(data[:100]))))
    log.append("study_received", analyses=BIG[:50])
    assert verify_log(path).ok and len(verify_log(path).records) == 4


@pytest.mark.parametrize(("ops", "says"), [
    (failing(write=half_then(errno.ENOSPC)), "the disk is full"),
    (failing(write=raises(errno.ENOSPC)), "the disk is full"),
    (failing(fsync=raises(errno.EIO)), "the disk is failing"),
], ids=["enospc-after-a-short-write", "enospc", "eio-on-fsync"])
def test_a_failed_append_leaves_the_log_as_it_was(tmp_path: Path, ops: FileOps, says: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path)
    before = path.read_bytes()
    full = AuditLog(path, party="hospital-a", ops=ops)
    with caplog.at_level(logging.ERROR), pytest.raises(StorageError, match=says) as info:
        full.append_all([("study_received", {"analyses": BIG}), ("job_start", {"job": "x"})])
    assert "audit log cannot be written" in str(info.value) and str(path) in caplog.text
    assert path.read_bytes() == before  # nothing of either record
    AuditLog(path, party="hospital-a").append("study_received", job="later")  # space freed
    assert verify_log(path).ok and len(verify_log(path).records) == 4


def test_a_failed_undo_leaves_a_torn_tail_the_next_append_moves_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path)
    broken_disk = failing(write=half_then(errno.EIO), ftruncate=raises(errno.EIO))
    with pytest.raises(StorageError, match="failing"):
        AuditLog(path, party="hospital-a", ops=broken_disk).append("job_start", job="x")
    assert verify_log(path).torn > 0
    record = AuditLog(path, party="hospital-a").append("job_start", job="y")
    events = [r["event"] for r in verify_log(path).records]
    assert events[-2:] == ["log_repaired", "job_start"] and record["seq"] == 5
    assert verify_log(path).ok and verify_log(path).torn == 0


@pytest.mark.parametrize("torn", [b'{"seq": 4, "time": "2026-', b"\0" * 300 + b"\n",
                                  b'{"seq": 4, "ti\n{"seq": 4, "time'],
                         ids=["partial-line", "line-of-zeros", "not-a-record-then-partial"])
def test_a_torn_tail_is_quarantined_at_start(tmp_path: Path, torn: bytes,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path)
    with path.open("ab") as f:  # a crash between write and fsync
        f.write(torn)
    report = verify_log(path)
    assert report.ok and report.torn == len(torn) and len(report.records) == 3
    run = cli_verify(path)
    assert run.returncode == 3, run.stderr
    assert f"torn tail: {len(torn)} bytes after record 3; the node will quarantine it at " \
           "start" in run.stderr
    log = AuditLog(path, party="hospital-a")
    with caplog.at_level(logging.WARNING):
        moved = log.recover()
    assert moved is not None and moved.path.read_bytes() == torn
    assert moved.path.parent == tmp_path and moved.path.name.startswith("audit.jsonl.torn-")
    assert str(path) in caplog.text and str(moved.path) in caplog.text
    repaired = verify_log(path).records[-1]
    assert repaired["event"] == "log_repaired" and repaired["data"]["after_record"] == 3
    assert repaired["data"]["torn_bytes"] == len(torn)
    log.append("node_start")
    assert verify_log(path).ok and cli_verify(path).returncode == 0


def test_a_broken_chain_is_not_repaired(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path, events=4)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"j1"', '"jX"')
    path.write_text("\n".join(lines) + "\n" + '{"seq": 5, "ti')
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"chain is broken \(line 2: record 2 was changed.*"
                                          r"securecalc audit verify"):
        AuditLog(path, party="hospital-a").recover()
    assert path.read_bytes() == before and list(tmp_path.glob("*.torn-*")) == []
    run = cli_verify(path)
    assert run.returncode == 1 and "was changed" in run.stderr and "torn tail" in run.stderr


def test_an_append_refuses_a_log_whose_last_two_lines_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path)
    with path.open("ab") as f:
        f.write(b"not a record\nnor this\n")
    with pytest.raises(ConfigError, match="chain is broken"):
        AuditLog(path, party="hospital-a").append("job_start")
    assert cli_verify(path).returncode == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="needs root to mount a small tmpfs")
def test_a_real_full_disk(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = disk / "audit.jsonl"
        log = filled(path)
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)
        before = path.read_bytes()
        with pytest.raises(StorageError, match="the disk is full"):
            log.append("study_received", analyses=BIG)
        assert path.read_bytes() == before
        filler.unlink()
        log.append("study_received", analyses=BIG)
        assert verify_log(path).ok and len(verify_log(path).records) == 4
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_torn_tail_that_cannot_be_moved_aside_is_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    filled(path)
    with path.open("ab") as f:
        f.write(b'{"seq": 4, "ti')
    before = path.read_bytes()
    with pytest.raises(StorageError, match="quarantine file of the audit log cannot be "
                                           "written: the disk is full"):
        AuditLog(path, party="hospital-a", ops=failing(write=raises(errno.ENOSPC))).recover()
    assert path.read_bytes() == before and list(tmp_path.glob("*.torn-*")) == []
    assert AuditLog(path, party="hospital-a").recover() is not None  # once space is freed


def test_a_checkpoint_the_disk_cannot_hold_is_an_error_not_a_missing_signature(
        tmp_path: Path) -> None:
    init_pki(tmp_path / "pki", hospitals=["hospital-a"])
    pki = tmp_path / "pki"
    log = AuditLog(tmp_path / "audit.jsonl", party="hospital-a",
                   key_pem=(pki / "hospital-a.key").read_bytes(),
                   cert_pem=(pki / "hospital-a.crt").read_bytes(),
                   ops=failing(write=raises(errno.ENOSPC)))
    with pytest.raises(StorageError, match="the disk is full"):
        signed_head(log)
    assert signed_head(AuditLog(tmp_path / "plain.jsonl", party="hospital-a")) == ""
