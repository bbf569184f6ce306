"""Limits through real node processes and the real command line.

A coordinator that skips its own checks and sends an oversized job straight to a node over
gRPC (with the coordinator's certificate) is refused, with the limit named, before the node
logs the job: its audit log gains one short ``study_refused`` record. ``securecalc study run``
refuses an oversized study file before it contacts any node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from securecalc.core import limits
from securecalc.core.analyses import Analysis
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort
from securecalc.transport.channel import create_channel
from securecalc.transport.codec import job_to_proto
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
#: an audit record of a refused job stays below this
SHORT_RECORD = 4096


@pytest.fixture(scope="module")
def cluster(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    cohort = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=100, seed=3,
                          names=HOSPITALS)
    return cluster_factory(dict(zip(HOSPITALS, cohort, strict=True)), with_compute=False)


def audit_lines(cluster, name: str = "hospital-a") -> list[str]:  # type: ignore[no-untyped-def]
    return (cluster.root / "audit" / f"{name}.jsonl").read_text().splitlines()


def job(cluster, job_id: str, analyses: list[Analysis]) -> Job:  # type: ignore[no-untyped-def]
    return Job(study="limits", job_id=job_id,
               parties=tuple(Party(p, cluster.addresses[p]) for p in HOSPITALS),
               schema=synth_schema(), analyses=tuple(analyses))


def send(cluster, spec, max_message_bytes: int = limits.GRPC_MESSAGE.value) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    """RunMpc straight to hospital-a as the coordinator; the error it fails with."""
    tls = TlsFiles.in_directory(cluster.pki, "coordinator")
    with create_channel(cluster.addresses["hospital-a"], tls=tls, expected_name="hospital-a",
                        max_message_bytes=max_message_bytes) as channel:
        request = node_pb2.MpcJobRequest(spec=spec, peer_timeout_seconds=5)
        with pytest.raises(grpc.RpcError) as info:
            node_pb2_grpc.PartyNodeStub(channel).RunMpc(request, timeout=30)
    return info.value


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("case", "expected"), [
    ("probs", "field 'analysis[0].probs': 100000 probabilities; the limit is 64"),
    ("analyses", "field 'analyses': 20000 analyses; the limit is 256"),
])
def test_a_node_refuses_an_oversized_job_before_logging_it(cluster, case: str,  # type: ignore[no-untyped-def]
                                                             expected: str) -> None:
    if case == "probs":
        analyses = [Analysis("q", "quantiles", "age",
                             options={"probs": [i / 100_000 for i in range(100_000)]})]
    else:
        analyses = [Analysis(f"n{i}", "count") for i in range(20_000)]
    job_id = f"oversized-{case}"
    before = len(audit_lines(cluster))
    error = send(cluster, job_to_proto(job(cluster, job_id, analyses)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert expected in error.details()
    new = audit_lines(cluster)[before:]
    assert new and all(len(line) < SHORT_RECORD for line in new), [len(x) for x in new]
    records = [json.loads(line) for line in new]
    assert [r["event"] for r in records] == ["study_refused"]
    assert records[0]["data"]["job"] == job_id and expected in records[0]["data"]["reason"]


@pytest.mark.timeout(60)
def test_a_node_refuses_a_message_above_its_receive_limit(cluster) -> None:  # type: ignore[no-untyped-def]
    spec = job_to_proto(job(cluster, "huge", [Analysis("n", "count")]))
    spec.study = "s" * (limits.GRPC_MESSAGE.value + 1)
    before = len(audit_lines(cluster))
    error = send(cluster, spec, max_message_bytes=4 * limits.GRPC_MESSAGE.value)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert len(audit_lines(cluster)) == before


def securecalc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("case", "expected"), [
    ("file", f"{limits.STUDY_FILE.value + 1} bytes; the limit is {limits.STUDY_FILE.value}"),
    ("probs", "'analysis[0].probs': 100000 probabilities; the limit is 64"),
])
def test_study_run_refuses_an_oversized_study_before_contacting_a_node(  # type: ignore[no-untyped-def]
        cluster, case: str, expected: str) -> None:
    probs = [i / 100_000 for i in range(100_000 if case == "probs" else 3)]
    analyses = f'[[analysis]]\nid = "q"\nkind = "quantiles"\ncolumn = "age"\nprobs = {probs}\n'
    study: Path = cluster.study(f"oversized-{case}", "mpc", SYNTH_SCHEMA_TOML, analyses)
    if case == "file":
        size = study.stat().st_size
        with study.open("a") as handle:
            handle.write("#" * (limits.STUDY_FILE.value - size) + "\n")
    logs = {name: len(audit_lines(cluster, name)) for name in HOSPITALS}
    result = securecalc("study", "run", str(study))
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [x for x in result.stderr.splitlines() if x.startswith("securecalc: error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert str(study) in lines[0]
    assert {name: len(audit_lines(cluster, name)) for name in HOSPITALS} == logs


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("outcomes", "expected"), [
    ([node_pb2.ReleaseOutcome(analysis_id=f"a{i}", status="released") for i in range(300)],
     "field 'outcomes': 300 analyses; the limit is 256"),
    ([node_pb2.ReleaseOutcome(analysis_id="a" * 5000, status="withheld")],
     "field 'outcomes': 5000 characters; the limit is 256"),
])
def test_a_node_refuses_oversized_release_reports_before_logging_them(  # type: ignore[no-untyped-def]
        cluster, outcomes: list[node_pb2.ReleaseOutcome], expected: str) -> None:
    tls = TlsFiles.in_directory(cluster.pki, "coordinator")
    before = len(audit_lines(cluster))
    with create_channel(cluster.addresses["hospital-a"], tls=tls,
                        expected_name="hospital-a") as channel:
        request = node_pb2.HeadsRequest(job_id="reported", outcomes=outcomes)
        with pytest.raises(grpc.RpcError) as info:
            node_pb2_grpc.PartyNodeStub(channel).StoreHeads(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, info.value
    assert expected in info.value.details()
    assert audit_lines(cluster)[before:] == []
