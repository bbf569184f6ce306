"""Key pins against the study CA's operator: real node and compute processes on loopback.

Whoever runs the study CA can sign a second certificate for any name, with a key it holds.
Each hospital pins the others' keys (``[pins]`` in node.toml, compute.toml): such a
certificate is refused on every call, by name, whatever the CA signed. The honest study still
runs, and a node whose roster has a hospital without a pin does not start.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.engines.ckks import KeyHolder, Layout
from securecalc.errors import SecureCalcError
from securecalc.pki import Role, issue_certificate
from securecalc.signing import sign_submission
from securecalc.studyfolder import node_toml, write
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc.transport.channel import PartyChannel, create_channel
from securecalc.transport.codec import ckks_params_to_proto, job_to_proto
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc, node_pb2, node_pb2_grpc
from securecalc.transport.servicers import JOB_HEADER
from securecalc.transport.tls import TlsFiles

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
COUNT = '[[analysis]]\nid = "n"\nkind = "count"\n'
QUICK = "peer_timeout_seconds = 5\ntimeout_seconds = 60\n"
IMPOSTOR = "does not carry the key pinned for"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=300, seed=5,
                         names=HOSPITALS)
    return dict(zip(HOSPITALS, files, strict=True))


@pytest.fixture(scope="module")
def cluster(cluster_factory, cohort) -> LocalCluster:  # type: ignore[no-untyped-def]
    cluster: LocalCluster = cluster_factory(cohort)
    return cluster


@pytest.fixture(scope="module")
def rogue(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA operator's own certificates, with keys it holds, for hospital-b and for the
    coordinator: from the study CA, with the right names and roles."""
    folder = tmp_path_factory.mktemp("rogue")
    ca_cert, ca_key = cluster.pki / "ca.crt", cluster.pki / "ca.key"
    issue_certificate(ca_cert, ca_key, "hospital-b", folder, role=Role.HOSPITAL)
    issue_certificate(ca_cert, ca_key, "coordinator", folder, role=Role.COORDINATOR)
    return folder


def channel_as(cluster: LocalCluster, folder: Path, me: str, to: str) -> PartyChannel:
    return create_channel(cluster.addresses[to], tls=TlsFiles(
        cluster.pki / "ca.crt", folder / f"{me}.crt", folder / f"{me}.key"),
        expected_name=to, own_name=me)


def refusal(call: object) -> grpc.RpcError:
    """The error a call raised (it must raise)."""
    assert callable(call)
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "result"):
            result.result()
    return info.value


def assert_impostor(error: grpc.RpcError, name: str) -> None:
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
    details = error.details() or ""
    assert f"the certificate of {name} {IMPOSTOR} {name}" in details, details
    assert "sha256:" not in details  # no key material in the message


def a_job(cluster: LocalCluster) -> node_pb2.MpcJobRequest:
    from securecalc.coordinator.study import new_job
    from securecalc.core.config import load_study_config

    study = load_study_config(cluster.study("pinned-job", "mpc", SYNTH_SCHEMA_TOML, COUNT))
    return node_pb2.MpcJobRequest(spec=job_to_proto(new_job(study)))


@pytest.mark.timeout(60)
def test_a_second_hospital_b_certificate_cannot_open_an_mpc_stream(  # type: ignore[no-untyped-def]
        cluster, rogue: Path) -> None:
    with channel_as(cluster, rogue, "hospital-b", "hospital-a") as channel:
        frames = iter([node_pb2.MpcFrame(job_id="j-1", data=b"x")])
        error = refusal(lambda: node_pb2_grpc.PartyNodeStub(channel).Exchange(
            frames, timeout=10, metadata=((JOB_HEADER, "j-1"),)))
    assert_impostor(error, "hospital-b")
    # the genuine hospital-b is let through to the job check (this job is not there yet)
    with channel_as(cluster, cluster.pki, "hospital-b", "hospital-a") as channel:
        frames = iter([node_pb2.MpcFrame(job_id="j-1", data=b"x")])
        error = refusal(lambda: node_pb2_grpc.PartyNodeStub(channel).Exchange(
            frames, timeout=10, metadata=((JOB_HEADER, "j-1"),)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error


@pytest.mark.timeout(60)
def test_a_second_hospital_b_certificate_is_refused_on_every_node_call(  # type: ignore[no-untyped-def]
        cluster, rogue: Path) -> None:
    with channel_as(cluster, rogue, "hospital-b", "hospital-a") as channel:
        stub = node_pb2_grpc.PartyNodeStub(channel)
        calls = [
            lambda: stub.RunMpc(node_pb2.MpcJobRequest(), timeout=10),
            lambda: stub.RunCkks(iter([node_pb2.CkksJobChunk()]), timeout=10),
            lambda: stub.StoreHeads(node_pb2.HeadsRequest(job_id="j"), timeout=10),
        ]
        for call in calls:
            assert_impostor(refusal(call), "hospital-b")


@pytest.mark.timeout(60)
def test_a_second_hospital_b_certificate_cannot_submit_to_the_compute_node(  # type: ignore[no-untyped-def]
        cluster, rogue: Path) -> None:
    holder = KeyHolder.create()
    layout = Layout(3, holder.params)
    with channel_as(cluster, cluster.pki, "coordinator", "compute") as channel:
        compute_pb2_grpc.ComputeNodeStub(channel).OpenJob(compute_pb2.OpenJobRequest(
            job_id="pinned-ckks", sites=list(HOSPITALS), n_values=layout.n_values,
            params=ckks_params_to_proto(layout.params),
            params_context=holder.params_context_bytes()), timeout=20)
    from securecalc.engines.ckks import encrypt_packed

    cts = encrypt_packed(holder.public_context_bytes(), [1.0, 2.0, 3.0], layout)
    signature = sign_submission((rogue / "hospital-b.key").read_bytes(), "pinned-ckks",
                                "hospital-b", cts)

    def chunks() -> Iterator[compute_pb2.CiphertextChunk]:
        for index, ciphertext in enumerate(cts):
            yield compute_pb2.CiphertextChunk(job_id="pinned-ckks", index=index,
                                              data=ciphertext)
        yield compute_pb2.CiphertextChunk(job_id="pinned-ckks", signature=signature)

    with channel_as(cluster, rogue, "hospital-b", "compute") as channel:
        error = refusal(lambda: compute_pb2_grpc.ComputeNodeStub(channel).Submit(
            chunks(), timeout=20))
    assert_impostor(error, "hospital-b")


@pytest.mark.timeout(60)
def test_a_second_coordinator_certificate_cannot_drive_a_node(  # type: ignore[no-untyped-def]
        cluster, rogue: Path) -> None:
    request = a_job(cluster)
    with channel_as(cluster, rogue, "coordinator", "hospital-a") as channel:
        stub = node_pb2_grpc.PartyNodeStub(channel)
        assert_impostor(refusal(lambda: stub.RunMpc(request, timeout=20)), "coordinator")
        assert_impostor(refusal(lambda: stub.StoreHeads(
            node_pb2.HeadsRequest(job_id="rogue-coordinator-1"), timeout=20)), "coordinator")
    with channel_as(cluster, rogue, "coordinator", "compute") as channel:
        assert_impostor(refusal(lambda: compute_pb2_grpc.ComputeNodeStub(channel).Checkpoint(
            compute_pb2.CheckpointRequest(job_id="x"), timeout=20)), "coordinator")


@pytest.mark.timeout(120)
def test_an_honest_study_runs_with_pins(cluster: LocalCluster) -> None:
    text = (cluster.root / "hospital-a.toml").read_text()
    assert "[pins]" in text and '"hospital-b" = "sha256:' in text
    results = run_study(cluster.study("honest", "mpc", SYNTH_SCHEMA_TOML, COUNT,
                                      extra_study=QUICK))
    assert results.results["n"].value == 900


@pytest.mark.timeout(60)
def test_a_node_without_a_pin_for_a_roster_hospital_does_not_start(  # type: ignore[no-untyped-def]
        cluster, cohort, tmp_path: Path) -> None:
    text = node_toml("hospital-a", "127.0.0.1:0", cohort["hospital-a"], cluster.pki,
                     list(HOSPITALS))
    lines = [line for line in text.splitlines() if not line.startswith('"hospital-c" = ')]
    config = write(tmp_path / "hospital-a.toml", "\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "securecalc", "node", "serve", "--config",
                           str(config)], capture_output=True, text=True, timeout=50)
    assert done.returncode != 0
    assert "hospital-c has no key pin" in done.stderr, done.stderr
    assert "securecalc certs pin" in done.stderr, done.stderr
    # development mode needs no pins
    insecure = write(tmp_path / "insecure.toml", "\n".join(
        line for line in lines if not line.startswith('"')) + "\n")
    from securecalc.core.config import load_node_config

    assert load_node_config(insecure, insecure=True).pins == {}


@pytest.fixture(scope="module")
def rogue_server(cluster: LocalCluster, rogue: Path, cohort,  # type: ignore[no-untyped-def]
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    """A node run by the CA operator with its own ``hospital-b`` certificate (a key it holds):
    the server a study would send hospital-a to, at an address of the operator's choosing."""
    folder = tmp_path_factory.mktemp("rogue-node")
    pki = folder / "pki"
    pki.mkdir()
    for public in cluster.pki.glob("*.crt"):  # the others' certificates are public
        (pki / public.name).write_bytes(public.read_bytes())
    for part in ("crt", "key"):
        (pki / f"hospital-b.{part}").write_bytes((rogue / f"hospital-b.{part}").read_bytes())
    config = write(folder / "hospital-b.toml",
                   node_toml("hospital-b", "127.0.0.1:0", cohort["hospital-b"], pki,
                             list(HOSPITALS)))
    return cluster.servers.start("rogue-hospital-b",
                                 ["node", "serve", "--config", str(config)]).address


@pytest.mark.timeout(120)
def test_an_outbound_channel_reaches_only_the_pinned_key(  # type: ignore[no-untyped-def]
        cluster: LocalCluster, rogue_server: str) -> None:
    """hospital-a's links to an address from a job (MPC frames, confirmations, ciphertexts)
    are made only after the server there shows the pinned key: the rogue server holds a valid
    CA-signed hospital-b certificate and gets no channel; the real hospital-b does."""
    from securecalc.core.config import load_node_config
    from securecalc.errors import PartyError
    from securecalc.transport.channel import create_pinned_channel, wait_ready

    me = load_node_config(cluster.root / "hospital-a.toml")
    tls = TlsFiles(me.tls.ca, me.tls.cert, me.tls.key)  # type: ignore[union-attr]
    with pytest.raises(PartyError, match="another key than its pin"):
        create_pinned_channel(rogue_server, tls=tls, expected_name="hospital-b",
                              own_name="hospital-a", pins=me.pins)
    with pytest.raises(PartyError, match="no key pin"):
        create_pinned_channel(rogue_server, tls=tls, expected_name="hospital-b",
                              own_name="hospital-a", pins={})
    real = cluster.addresses["hospital-b"]
    with create_pinned_channel(real, tls=tls, expected_name="hospital-b",
                               own_name="hospital-a", pins=me.pins) as channel:
        wait_ready(channel, 20, "hospital-b")


@pytest.mark.timeout(180)
def test_a_study_that_sends_a_hospital_to_the_rogue_server_reads_nothing(  # type: ignore[no-untyped-def]
        cluster: LocalCluster, rogue_server: str) -> None:
    """The operator writes a study that puts its hospital-b at hospital-b's place: the study
    fails, no row is read anywhere (the rogue server is the real hospital-b to nobody)."""
    study = cluster.study("rogue-b", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                          address_override={"hospital-b": rogue_server})
    with pytest.raises(SecureCalcError):
        run_study(study)
    for name in ("hospital-a", "hospital-c"):
        records = [json.loads(line) for line in
                   (cluster.root / "audit" / f"{name}.jsonl").read_text().splitlines()]
        jobs = {r["data"]["job"] for r in records if r["event"] == "study_received"
                and r["data"].get("study") == "rogue-b"}
        assert jobs, f"{name} never received the study"
        started = [r for r in records if r["event"] == "job_start" and r["data"]["job"] in jobs]
        assert not started, f"{name} read its rows for a job with the rogue server"


@pytest.mark.timeout(60)
def test_a_head_signed_with_a_second_hospital_b_key_is_not_kept(  # type: ignore[no-untyped-def]
        cluster: LocalCluster, rogue: Path, tmp_path: Path) -> None:
    """Audit tampering by the CA operator: a checkpoint "of hospital-b" signed with its own
    CA-signed hospital-b certificate, handed to hospital-a as the heads of a study. The node
    keeps only heads signed with the keys it pinned; the real hospital-b's would be kept."""
    from securecalc.audit.events import open_log

    def head(folder: Path, name: str, job: str) -> str:
        log = open_log(tmp_path / f"{name}.jsonl", "hospital-b", key=folder / "hospital-b.key",
                       cert=folder / "hospital-b.crt")
        log.append("job_end", job=job)
        return json.dumps(log.checkpoint())

    with channel_as(cluster, cluster.pki, "coordinator", "hospital-a") as channel:
        stub = node_pb2_grpc.PartyNodeStub(channel)
        error = refusal(lambda: stub.StoreHeads(node_pb2.HeadsRequest(
            job_id="forged-head", checkpoint_json=[head(rogue, "forged", "x")]), timeout=20))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        kept = stub.StoreHeads(node_pb2.HeadsRequest(
            job_id="genuine-head", checkpoint_json=[head(cluster.pki, "genuine", "y")]),
            timeout=20)
    assert kept.stored == 1  # the same head signed with the pinned key is kept
    log = (cluster.root / "audit" / "hospital-a.jsonl").read_text()
    assert '"forged-head"' not in log and '"genuine-head"' in log
