"""Audit logs through real node processes: a torn tail is quarantined at start, a study of
1,500 analyses (a ``study_received`` record over 64 KiB) leaves the node serving and able to
restart, and a full disk refuses studies until space is freed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from securecalc.audit.verify import verify_log
from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.limits import ANALYSES
from securecalc.errors import ConfigError, SecureCalcError
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from tests.system.conftest import HOSPITALS

ROWS = 300


EVERY_AGE = ", ".join(str(age) for age in range(18, 96))  # the catalogue's ages: a long filter


def counts_toml(n: int) -> str:
    return "".join(f'[[analysis]]\nid = "count_{i:04d}"\nkind = "count"\n'
                   f'where = "age >= {18 + i % 60} and age in [{EVERY_AGE}]"\n\n'
                   for i in range(n))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=ROWS, seed=5,
                         names=HOSPITALS)
    return dict(zip(HOSPITALS, files, strict=True))


def audit_log(cluster, name: str) -> Path:  # type: ignore[no-untyped-def]
    return cluster.root / "audit" / f"{name}.jsonl"


def run_counts(cluster, name: str, n: int) -> None:  # type: ignore[no-untyped-def]
    result = run_study(cluster.study(name, "mpc", SYNTH_SCHEMA_TOML, counts_toml(n)))
    assert result.results["count_0000"].value == 3 * ROWS
    assert len(result.results) == n


def assert_logs_verify(cluster) -> None:  # type: ignore[no-untyped-def]
    for name in HOSPITALS:
        report = verify_log(audit_log(cluster, name), ca=cluster.pki / "ca.crt")
        assert report.ok and report.torn == 0, (name, report.problems)


@pytest.mark.timeout(120)
def test_a_node_quarantines_a_torn_tail_at_start_and_serves(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False)
    log = audit_log(cluster, "hospital-a")
    cluster.servers.servers["hospital-a"].stop()
    torn = b'{"data": {"job": "cut-off"}, "event": "job_start", "hash": "3f'
    with log.open("ab") as f:  # what a crash between write and fsync leaves
        f.write(torn)
    assert verify_log(log).torn == len(torn)
    ledger = cluster.root / "privacy-ledger" / "hospital-a.jsonl"  # beside node.toml
    ledger.parent.mkdir(exist_ok=True)
    ledger.write_bytes(b'{"epsilon": "0.5", "job": "cut-off", "st')  # a charge cut off too
    cluster.restart("hospital-a")
    run_counts(cluster, "after-repair", 3)
    moved = list(log.parent.glob("hospital-a.jsonl.torn-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == torn
    assert ledger.read_bytes() == b"" and len(list(ledger.parent.glob("*.torn-*"))) == 1
    events = [r["event"] for r in verify_log(log).records]
    assert "log_repaired" in events and "ledger_repaired" in events
    node_log = (cluster.root / "logs" / "hospital-a.log").read_text()
    assert "WARNING" in node_log and str(log) in node_log and str(moved[0]) in node_log
    assert_logs_verify(cluster)


@pytest.mark.timeout(300)
def test_a_study_at_the_analyses_limit_leaves_the_nodes_serving(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    """A study record far beyond 64 KiB (the most analyses a study may hold, each with a long
    filter) is appended whole, and the node finds its head behind it."""
    cluster = cluster_factory(cohort, with_compute=False)
    run_counts(cluster, "many-counts", ANALYSES.value)
    received = [r for r in verify_log(audit_log(cluster, "hospital-b")).records
                if r["event"] == "study_received"]
    assert len(audit_log(cluster, "hospital-b").read_bytes()) > 64 * 1024 and received
    run_counts(cluster, "next", 2)  # the node finds its head behind the large record
    cluster.restart("hospital-b")
    run_counts(cluster, "after-restart", 2)
    assert_logs_verify(cluster)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs (needs root; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
            capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        return filler
    finally:
        os.close(fd)


@pytest.mark.timeout(180)
def test_a_node_on_a_full_disk_refuses_studies_until_space_is_freed(
        small_disk: Path, cohort: dict[str, Path], tmp_path: Path) -> None:
    log = small_disk / "hospital-b.jsonl"
    with LocalCluster.start(tmp_path / "cluster", cohort, with_compute=False,
                            node_extra={"hospital-b": f'[audit]\nlog = "{log}"\n'}) as cluster:
        before = log.read_bytes()
        filler = fill(small_disk)
        with pytest.raises(ConfigError, match="hospital-b: the audit log cannot be written: "
                                              "the disk is full"):
            run_counts(cluster, "disk-full", 100)  # a study_received record of about 6 KiB
        assert log.read_bytes() == before  # nothing half-written
        assert str(log) in (cluster.root / "logs" / "hospital-b.log").read_text()
        filler.unlink()
        run_counts(cluster, "space-freed", 100)  # the same process serves again
    report = verify_log(log, ca=cluster.pki / "ca.crt")
    assert report.ok and report.torn == 0


@pytest.mark.timeout(120)
def test_a_node_whose_chain_is_broken_refuses_to_start(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False)
    run_counts(cluster, "before-tampering", 2)
    log = audit_log(cluster, "hospital-c")
    cluster.servers.servers["hospital-c"].stop()
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"hospital-c"', b'"hospital-x"', 1)
    log.write_bytes(b"".join(lines) + b'{"seq": 99, "ti')  # a torn tail too: not repaired
    with pytest.raises(SecureCalcError, match=r"chain is broken \(line 2: record 2 was "
                                              r"changed.*securecalc audit verify"):
        cluster.restart("hospital-c")
    assert list(log.parent.glob("hospital-c.jsonl.torn-*")) == []
