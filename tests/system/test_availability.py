"""Nothing an honest study does is lost, and no party can block others: attacks through real
node and compute processes with real certificates.

Two coordinators, ``coordinator`` (honest) and ``lead-b`` (listed by every node too, and the
attacker where one is needed), three hospitals and a compute node. Each test is one attack of
the availability review; the honest study that follows it must succeed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.analyses import Analysis
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.limits import CALLS_PER_CALLER, OPEN_JOBS_PER_COORDINATOR, REFUSALS_PER_HOUR
from securecalc.engines.ckks import KeyHolder, Layout
from securecalc.studyfolder import node_toml, write
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort
from securecalc.transport.admission import FIRST_MESSAGE_SECONDS
from securecalc.transport.channel import create_channel
from securecalc.transport.codec import ckks_params_to_proto, job_to_proto
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc, node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
COORDINATORS = ("coordinator", "lead-b")
STUDY = "timeout_seconds = 120\npeer_timeout_seconds = 20\n"
COUNTS = """
[[analysis]]
id = "patients"
kind = "count"

[[analysis]]
id = "mean_age"
kind = "mean"
column = "age"
"""


@pytest.fixture(scope="module")
def cluster(cluster_factory, tmp_path_factory) -> LocalCluster:  # type: ignore[no-untyped-def]
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=400, seed=5,
                         names=HOSPITALS)
    made: LocalCluster = cluster_factory(dict(zip(HOSPITALS, files, strict=True)),
                                         ckks="exact", coordinators=COORDINATORS)
    return made


def honest(cluster: LocalCluster, name: str, engine: str = "mpc",
           analyses: str = COUNTS, coordinator: str = "coordinator") -> dict[str, Any]:
    """Run a study of the honest coordinator; its results by analysis id."""
    study = cluster.study(name, engine, SYNTH_SCHEMA_TOML, analyses, extra_study=STUDY,
                          coordinator=coordinator)
    result = run_study(study)
    return {rid: r.value for rid, r in result.results.items()}


def channel_to(cluster: LocalCluster, server: str, as_party: str) -> grpc.Channel:
    return create_channel(cluster.addresses[server],
                          tls=TlsFiles.in_directory(cluster.pki, as_party), expected_name=server)


def records(cluster: LocalCluster, name: str) -> list[dict[str, Any]]:
    path = cluster.root / "audit" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def audit_path(cluster: LocalCluster, name: str) -> Path:
    return cluster.root / "audit" / f"{name}.jsonl"


def open_job(stub: compute_pb2_grpc.ComputeNodeStub, job_id: str, holder: KeyHolder,
             lifetime: float = 0.0) -> None:
    layout = Layout(5, holder.params)
    stub.OpenJob(compute_pb2.OpenJobRequest(
        job_id=job_id, sites=list(HOSPITALS), n_values=layout.n_values,
        params=ckks_params_to_proto(layout.params),
        params_context=holder.params_context_bytes(), lifetime_seconds=lifetime), timeout=30)


# ------------------------------------------------------------------ 1. open jobs nobody feeds
@pytest.mark.timeout(240)
def test_unfed_open_jobs_of_one_coordinator_do_not_block_another(cluster) -> None:  # type: ignore[no-untyped-def]
    """``lead-b`` opens 64 CKKS jobs it never feeds (the table's size): the compute node
    keeps 16 of them, refuses the rest naming the limit, and the honest coordinator's CKKS
    study runs. A job stated to live 3 s is gone after it."""
    holder = KeyHolder.create()
    refused: list[str] = []
    with channel_to(cluster, "compute", "lead-b") as channel:
        stub = compute_pb2_grpc.ComputeNodeStub(channel)
        for i in range(64):
            try:
                open_job(stub, f"squat-{i}", holder)
            except grpc.RpcError as exc:
                refused.append(exc.details() or "")
        assert len(refused) == 64 - OPEN_JOBS_PER_COORDINATOR.value, len(refused)
        assert all("the limit is 16 per coordinator" in r for r in refused), refused[0]

        values = honest(cluster, "after-squatting", "ckks")
        assert values["patients"] == 1200

        for i in range(OPEN_JOBS_PER_COORDINATOR.value):  # leave the table as it was
            stub.CloseJob(compute_pb2.CloseJobRequest(job_id=f"squat-{i}"), timeout=20)
        open_job(stub, "short-lived", holder, lifetime=3.0)
        time.sleep(6.0)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.FetchSum(compute_pb2.FetchSumRequest(job_id="short-lived",
                                                           wait_seconds=0), timeout=20))
        assert "unknown job" in (info.value.details() or "")


# ------------------------------------------------------------------ 2. stalled streams
def stalled(method: Any, n: int, release: threading.Event,
            metadata: tuple[tuple[str, str], ...] = ()) -> list[grpc.Future]:
    """``n`` client streams of ``method`` whose first message never comes (until release)."""
    def nothing() -> Iterator[Any]:
        release.wait()
        yield from ()

    return [method.future(nothing(), timeout=600, metadata=metadata) for _ in range(n)]


def ended(calls: list[grpc.Future], within: float) -> list[grpc.StatusCode]:
    """The status of each call, which must all have ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    codes = []
    for call in calls:
        try:
            call.result(timeout=max(deadline - time.monotonic(), 0.1))
            codes.append(grpc.StatusCode.OK)
        except grpc.FutureTimeoutError:
            pytest.fail(f"a stalled call still holds a server thread after {within:g} s")
        except grpc.RpcError as exc:
            codes.append(exc.code())
    return codes


@pytest.mark.timeout(240)
def test_stalled_streams_of_parties_that_may_not_call_end_at_once(cluster) -> None:  # type: ignore[no-untyped-def]
    """80 RunCkks streams that never send, from a hospital's and from the compute node's
    certificates, and 80 Submit streams from a hospital: refused before anything is read
    (within seconds, not when the caller gives up), and honest studies run meanwhile."""
    from securecalc.transport.servicers import JOB_HEADER

    release = threading.Event()
    calls: list[grpc.Future] = []
    channels = [channel_to(cluster, "hospital-a", "hospital-b"),
                channel_to(cluster, "hospital-a", "compute"),
                channel_to(cluster, "compute", "hospital-c")]
    try:
        for channel in channels[:2]:
            calls += stalled(node_pb2_grpc.PartyNodeStub(channel).RunCkks, 80, release)
        calls += stalled(compute_pb2_grpc.ComputeNodeStub(channels[2]).Submit, 80, release,
                         ((JOB_HEADER, "no-such-job"),))
        codes = ended(calls, within=45.0)
        assert set(codes[:160]) == {grpc.StatusCode.PERMISSION_DENIED}, set(codes)
        assert set(codes[160:]) == {grpc.StatusCode.FAILED_PRECONDITION}, set(codes)
        assert honest(cluster, "after-stalls-mpc")["patients"] == 1200
        assert honest(cluster, "after-stalls-ckks", "ckks")["patients"] == 1200
    finally:
        release.set()
        for call in calls:
            call.cancel()
        for channel in channels:
            channel.close()


@pytest.mark.timeout(300)
def test_a_coordinator_that_stalls_holds_a_bounded_share_for_a_bounded_time(cluster) -> None:  # type: ignore[no-untyped-def]
    """``lead-b`` may send CKKS jobs: of its 80 stalled RunCkks streams at hospital-a, 64 are
    held and 16 refused at once naming the limit; the honest coordinator's studies run while
    they are held; each held one is cancelled once its first message is overdue."""
    release = threading.Event()
    with channel_to(cluster, "hospital-a", "lead-b") as channel:
        calls = stalled(node_pb2_grpc.PartyNodeStub(channel).RunCkks, 80, release)
        try:
            time.sleep(2.0)
            assert honest(cluster, "beside-stalls-mpc")["patients"] == 1200
            assert honest(cluster, "beside-stalls-ckks", "ckks")["patients"] == 1200
            codes = ended(calls, within=FIRST_MESSAGE_SECONDS + 60.0)
        finally:
            release.set()
            for call in calls:
                call.cancel()
    excess = [c for c in codes if c == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert len(excess) == 80 - CALLS_PER_CALLER.value, codes
    assert codes.count(grpc.StatusCode.CANCELLED) == CALLS_PER_CALLER.value, codes


# ------------------------------------------------------------------ 3. long release reports
@pytest.mark.timeout(300)
def test_a_noisy_histogram_of_200_bins_is_released_and_recorded(cluster) -> None:  # type: ignore[no-untyped-def]
    """Its release note (noise per bin) is longer than a node records: the note is cut to
    its start, length and digest; the study returns and every node records the release."""
    analyses = (f'[[analysis]]\nid = "age_fine"\nkind = "histogram"\ncolumn = "age"\n'
                f"edges = {list(range(201))}\nepsilon = 1.0\n")
    study = cluster.study("fine-histogram", "mpc", SYNTH_SCHEMA_TOML, analyses,
                          extra_study=STUDY)
    result = run_study(study)
    assert len(result.results["age_fine"].value["counts"]) == 200
    for name in HOSPITALS:
        mine = [r for r in records(cluster, name) if r["data"].get("job") == result.job_id]
        events = [r["event"] for r in mine]
        assert "privacy_charge" in events and "release_reported" in events, events
        note = next(r for r in mine if r["event"] == "release_reported")["data"]["outcomes"][0][
            "note"]
        assert len(note) <= 1024 and "characters, sha256" in note, note


# ------------------------------------------------------------------ 4. a second coordinator
@pytest.mark.timeout(240)
def test_every_listed_coordinator_runs_studies(cluster) -> None:  # type: ignore[no-untyped-def]
    """``lead-b`` signs its audit head under its own name, which every node verifies."""
    assert honest(cluster, "second-lead", coordinator="lead-b")["patients"] == 1200
    assert honest(cluster, "second-lead-ckks", "ckks", coordinator="lead-b")["patients"] == 1200
    for name in HOSPITALS:
        signers = {r["data"]["signer"] for r in records(cluster, name)
                   if r["event"] == "peer_checkpoint"}
        assert "lead-b" in signers, signers


# ------------------------------------------------------------------ 5. a damaged ledger
@pytest.mark.timeout(120)
@pytest.mark.parametrize("epsilon", ['"1e400"', '"NaN"', '"-0.5"', "0.5", '"x"'])
def test_a_node_with_a_damaged_ledger_does_not_start(cluster, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      epsilon: str) -> None:
    """A ledger line that is not a charge as written stops the node at start, naming the
    file and the line, with the ledger and the audit log unchanged."""
    data = tmp_path / "site.csv"
    source = Path(next(line.split('"')[1] for line in
                       (cluster.root / "hospital-c.toml").read_text().splitlines()
                       if line.startswith("path = ")))
    shutil.copy(source, data)
    config = write(tmp_path / "node.toml", node_toml("hospital-c", "127.0.0.1:0", data,
                                                     cluster.pki, HOSPITALS))
    ledger = tmp_path / "privacy-ledger" / "hospital-c.jsonl"
    ledger.parent.mkdir()
    good = '{"epsilon": "0.5", "job": "j1", "study": "s", "time": "2026-01-01T00:00:00"}\n'
    bad = good.replace('"0.5"', epsilon).replace("j1", "j2")
    ledger.write_text(good + bad)
    done = subprocess.run([sys.executable, "-m", "securecalc", "node", "serve", "--config",
                           str(config)], capture_output=True, text=True, timeout=90)
    assert done.returncode != 0
    assert str(ledger) in done.stderr and "line 2" in done.stderr, done.stderr
    assert ledger.read_text() == good + bad
    log = tmp_path / "audit" / "hospital-c.jsonl"
    assert not log.exists() or "node_start" not in log.read_text()


# ------------------------------------------------------------------ 6. refusals
@pytest.mark.timeout(300)
def test_refused_studies_write_short_records_within_a_quota(cluster) -> None:  # type: ignore[no-untyped-def]
    """``lead-b`` sends 130 jobs of 16 analyses with long filters (about 50 KiB each) that
    hospital-a refuses (malformed, or below its min_cohort): each refusal is a short record,
    at most 120 are recorded, then their count; an honest study is still recorded in full."""
    where = " or ".join(["age >= 18"] * 250)
    analyses = tuple(Analysis(f"n{i}", "count", where=where) for i in range(16))
    everyone = tuple(Party(p, cluster.addresses[p]) for p in HOSPITALS)
    path = audit_path(cluster, "hospital-a")
    before = path.stat().st_size
    with channel_to(cluster, "hospital-a", "lead-b") as channel:
        stub = node_pb2_grpc.PartyNodeStub(channel)
        for i in range(130):
            # half malformed (two parties: refused as it is decoded), half refused by policy
            # (a min_cohort below the node's)
            spec = job_to_proto(Job(study="flood", job_id=f"flood-{i}",
                                    parties=everyone[:2] if i % 2 else everyone,
                                    schema=synth_schema(), analyses=analyses, min_cohort=1))
            with pytest.raises(grpc.RpcError) as info:
                stub.RunMpc(node_pb2.MpcJobRequest(spec=spec, peer_timeout_seconds=5),
                            timeout=30)
            assert info.value.code() in (grpc.StatusCode.PERMISSION_DENIED,
                                         grpc.StatusCode.FAILED_PRECONDITION), info.value
    lines = path.read_bytes()[before:].decode().splitlines()
    assert all(len(line) < 4096 for line in lines), max(len(line) for line in lines)
    flood = {json.loads(line)["data"].get("job") for line in lines}
    assert len(flood - {None}) <= REFUSALS_PER_HOUR.value
    assert sum(map(len, lines)) < 2 * 1024 * 1024

    assert honest(cluster, "after-flood")["patients"] == 1200
    received = [r for r in records(cluster, "hospital-a") if r["event"] == "study_received"]
    assert received[-1]["data"]["study"] == "after-flood"
    assert [a["id"] for a in received[-1]["data"]["analyses"]] == ["patients", "mean_age"]
    suppressed = [r for r in records(cluster, "hospital-a") if r["event"] == "refusals_suppressed"]
    assert not suppressed or suppressed[-1]["data"]["coordinator"] == "lead-b"
