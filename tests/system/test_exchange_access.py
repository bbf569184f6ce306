"""MPC message streams hold nothing for a caller that is not a party of the job.

A node answers an ``Exchange`` stream at once: it refuses a caller that is not another
hospital, a job that has not reached it (a real party tries again), and a caller that is not
a party of the job; no thread waits for anyone. Without that, any certificate of the study
CA could hold a node's threads for 30 s per stream.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest

import securecalc.coordinator.study as study_module
from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.config import StudyConfig
from securecalc.core.job import Job
from securecalc.node.mpc_session import JOB_HEADER
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc.transport.channel import create_channel
from securecalc.transport.proto import node_pb2, node_pb2_grpc
from securecalc.transport.tls import TlsFiles

AT_ONCE = 10.0  # far below the 30 s a stream used to wait for its job
BURST = 8


@pytest.fixture(scope="module")
def cluster(cluster_factory, tmp_path_factory) -> LocalCluster:  # type: ignore[no-untyped-def]
    names = ("hospital-a", "hospital-b", "hospital-c")
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=2000, seed=7,
                         names=names)
    return cluster_factory(dict(zip(names, files, strict=True)), with_compute=False,
                           extra_names=("intruder",))


def _channel(cluster: LocalCluster, caller: str, target: str = "hospital-a") -> grpc.Channel:
    tls = TlsFiles(cluster.pki / "ca.crt", cluster.pki / f"{caller}.crt",
                   cluster.pki / f"{caller}.key")
    return create_channel(cluster.addresses[target], tls=tls, expected_name=target)


def _stream(channel: grpc.Channel, job_id: str) -> tuple[grpc.StatusCode, float]:
    """Open an Exchange stream for ``job_id``; its status and how long it took."""
    frames = iter([node_pb2.MpcFrame(job_id=job_id, data=b"\x00" * 16)])
    started = time.monotonic()
    try:
        node_pb2_grpc.PartyNodeStub(channel).Exchange(frames, timeout=30,
                                                      metadata=((JOB_HEADER, job_id),))
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
    return code, time.monotonic() - started


@pytest.mark.timeout(60)
def test_streams_that_are_not_a_party_are_refused_at_once(cluster: LocalCluster) -> None:
    with _channel(cluster, "intruder") as channel:  # a job not here
        code, seconds = _stream(channel, uuid.uuid4().hex)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and seconds < AT_ONCE, (code, seconds)
    with _channel(cluster, "coordinator") as channel:  # not a hospital
        code, seconds = _stream(channel, uuid.uuid4().hex)
    assert code == grpc.StatusCode.PERMISSION_DENIED and seconds < AT_ONCE, (code, seconds)


@pytest.mark.timeout(90)
def test_a_burst_from_a_non_party_neither_waits_nor_blocks_a_study(
        cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[str] = []
    real_new_job = study_module.new_job

    def spy(config: StudyConfig) -> Job:
        job = real_new_job(config)
        jobs.append(job.job_id)
        return job

    monkeypatch.setattr(study_module, "new_job", spy)
    study: Path = cluster.study("burst", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                                extra_study="timeout_seconds = 60\n")
    outcome: dict[str, object] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_study(study)))
    runner.start()
    while not jobs and runner.is_alive():
        time.sleep(0.01)
    seen: list[tuple[grpc.StatusCode, float]] = []

    def hammer() -> None:  # the running job's id, or one of no job, until the study ends
        with _channel(cluster, "intruder") as channel:
            while runner.is_alive():
                job_id = jobs[0] if len(seen) % 2 else uuid.uuid4().hex
                seen.append(_stream(channel, job_id))

    burst = [threading.Thread(target=hammer) for _ in range(BURST)]
    for thread in burst:
        thread.start()
    runner.join(60)
    for thread in burst:
        thread.join(AT_ONCE)
    assert "result" in outcome, "the study did not finish"
    assert outcome["result"].results["patients"].value == 6000  # type: ignore[attr-defined]
    codes = {code for code, _ in seen}
    slowest = max(seconds for _, seconds in seen)
    print(f"\n{len(seen)} intruder streams, slowest answered in {slowest:.2f} s: {codes}")
    assert grpc.StatusCode.PERMISSION_DENIED in codes  # refused while its job ran
    assert grpc.StatusCode.OK not in codes
    assert slowest < AT_ONCE
