"""Audit logs through real node processes: a torn tail is quarantined at start, and a study of
1,500 analyses (a ``study_received`` record over 64 KiB) leaves the node serving and able to
restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from securecalc.audit.verify import verify_log
from securecalc.coordinator.study import run_study
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from tests.system.conftest import HOSPITALS

ROWS = 300


def counts_toml(n: int) -> str:
    return "".join(f'[[analysis]]\nid = "count_{i:04d}"\nkind = "count"\n'
                   f'where = "age >= {18 + i % 60}"\n\n' for i in range(n))


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
    cluster.restart("hospital-a")
    run_counts(cluster, "after-repair", 3)
    moved = list(log.parent.glob("hospital-a.jsonl.torn-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == torn
    assert "log_repaired" in [r["event"] for r in verify_log(log).records]
    node_log = (cluster.root / "logs" / "hospital-a.log").read_text()
    assert "WARNING" in node_log and str(log) in node_log and str(moved[0]) in node_log
    assert_logs_verify(cluster)


@pytest.mark.timeout(300)
def test_a_study_of_1500_analyses_leaves_the_nodes_serving(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False)
    run_counts(cluster, "many-counts", 1500)
    received = [r for r in verify_log(audit_log(cluster, "hospital-b")).records
                if r["event"] == "study_received"]
    assert len(audit_log(cluster, "hospital-b").read_bytes()) > 64 * 1024 and received
    run_counts(cluster, "next", 2)  # the node finds its head behind the large record
    cluster.restart("hospital-b")
    run_counts(cluster, "after-restart", 2)
    assert_logs_verify(cluster)
