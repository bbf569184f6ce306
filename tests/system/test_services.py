"""The services' contracts, checked against real processes over mutual TLS."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import tenseal as ts
from grpc_health.v1 import health_pb2, health_pb2_grpc

from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.core.table import load_table
from securecalc.engines.ckks import CkksParams, KeyHolder, Layout, encrypt_packed
from securecalc.engines.plain import pooled_result
from securecalc.errors import CryptoError, PartyError, SecureCalcError
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort
from securecalc.transport.channel import create_channel
from securecalc.transport.codec import ckks_params_to_proto
from securecalc.transport.errors import raise_from_rpc_error
from securecalc.transport.proto import compute_pb2, compute_pb2_grpc
from securecalc.transport.servicers import JOB_HEADER
from securecalc.transport.tls import TlsFiles

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=3000, seed=11,
                         names=HOSPITALS)
    return dict(zip(HOSPITALS, files, strict=True))


@pytest.fixture(scope="module")
def cluster(cluster_factory, cohort):  # type: ignore[no-untyped-def]
    return cluster_factory(cohort, ckks="exact")


def compute_stub(cluster, as_party: str):  # type: ignore[no-untyped-def]
    channel = create_channel(cluster.addresses["compute"],
                             tls=TlsFiles.in_directory(cluster.pki, as_party),
                             expected_name="compute")
    return channel, compute_pb2_grpc.ComputeNodeStub(channel)


def call(cluster, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    import grpc

    try:
        return fn(*args, timeout=20, **kwargs)
    except grpc.RpcError as exc:
        raise_from_rpc_error(exc, party="compute", address=cluster.addresses["compute"],
                             timeout=20)


def open_job(cluster, job_id: str, holder: KeyHolder, layout: Layout,  # type: ignore[no-untyped-def]
             sites=HOSPITALS, context: bytes | None = None) -> None:
    channel, stub = compute_stub(cluster, "coordinator")
    with channel:
        call(cluster, stub.OpenJob, compute_pb2.OpenJobRequest(
            job_id=job_id, sites=list(sites), n_values=layout.n_values,
            params=ckks_params_to_proto(layout.params),
            params_context=context if context is not None else holder.params_context_bytes()))


def submit(cluster, job_id: str, site: str, ciphertexts: list[bytes], *,  # type: ignore[no-untyped-def]
           signature: bytes | None = None) -> None:
    """Submit as ``site`` does: chunks, then its signature (made here unless given)."""
    from securecalc.signing import sign_submission
    from securecalc.transport import chunks

    if signature is None:
        key = (cluster.pki / f"{site}.key").read_bytes()
        signature = sign_submission(key, job_id, site, ciphertexts)

    def stream():  # type: ignore[no-untyped-def]
        for index, ciphertext in enumerate(ciphertexts):
            for piece in chunks.split(ciphertext):
                yield compute_pb2.CiphertextChunk(job_id=job_id, index=index, data=piece)
        if signature:
            yield compute_pb2.CiphertextChunk(job_id=job_id, signature=signature)

    channel, stub = compute_stub(cluster, site)
    with channel:
        call(cluster, stub.Submit, stream(), metadata=((JOB_HEADER, job_id),))


def fetch(cluster, job_id: str, n: int, wait: float = 1.0) -> list[bytes]:  # type: ignore[no-untyped-def]
    channel, stub = compute_stub(cluster, "coordinator")
    pieces: list[list[bytes]] = [[] for _ in range(n)]

    def collect(timeout: float) -> None:
        request = compute_pb2.FetchSumRequest(job_id=job_id, wait_seconds=wait)
        for chunk in stub.FetchSum(request, timeout=timeout):
            pieces[chunk.index].append(chunk.data)

    with channel:
        call(cluster, collect)
    return [b"".join(p) for p in pieces]


@pytest.mark.timeout(60)
def test_every_server_answers_health_checks(cluster) -> None:  # type: ignore[no-untyped-def]
    for name in (*HOSPITALS, "compute"):
        with create_channel(cluster.addresses[name],
                            tls=TlsFiles.in_directory(cluster.pki, "coordinator"),
                            expected_name=name) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.timeout(120)
def test_concurrent_studies_on_the_same_nodes(cluster, cohort) -> None:  # type: ignore[no-untyped-def]
    studies = [cluster.study(f"concurrent-{i}", engine, SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML)
               for i, engine in enumerate(("mpc", "mpc", "mpc", "ckks"))]
    results: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            results[i] = run_study(studies[i])
        except SecureCalcError as exc:  # pragma: no cover - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(studies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    schema = synth_schema()
    tables = [load_table(path, schema) for path in cohort.values()]
    analyses = load_study_config(studies[0]).analyses
    for i in range(len(studies)):
        result = results[i]
        assert not isinstance(result, Exception), result
        for analysis in analyses:
            reference = pooled_result(analysis, schema, tables)
            if reference is None:  # not a single number: covered by test_catalogue
                continue
            value, n = reference
            got = result.results[analysis.id]  # type: ignore[attr-defined]
            assert got.n == n
            assert got.value == pytest.approx(value, rel=1e-6 if i == 3 else 1e-9)


@pytest.mark.timeout(60)
def test_compute_node_refuses_a_context_with_a_secret_key(cluster) -> None:  # type: ignore[no-untyped-def]
    params = CkksParams()
    secret = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
    secret.global_scale = params.scale
    holder = KeyHolder.create(params)
    with pytest.raises(CryptoError):
        open_job(cluster, "private-ctx", holder, Layout(10, params),
                 context=secret.serialize(save_secret_key=True))


@pytest.mark.timeout(60)
def test_no_partial_sum_leaves_the_compute_node(cluster) -> None:  # type: ignore[no-untyped-def]
    holder = KeyHolder.create()
    layout = Layout(5, holder.params)
    open_job(cluster, "partial", holder, layout)
    submit(cluster, "partial", "hospital-a",
           encrypt_packed(holder.public_context_bytes(), [1.0, 2, 3, 4, 5], layout))
    with pytest.raises(PartyError) as info:
        fetch(cluster, "partial", layout.n_ciphertexts)
    assert "hospital-b" in str(info.value) and "hospital-c" in str(info.value)
    with pytest.raises(PartyError, match="refused"):  # the coordinator is not a site
        submit(cluster, "partial", "coordinator",
               encrypt_packed(holder.public_context_bytes(), [1.0] * 5, layout))
    with pytest.raises(PartyError, match="already contributed"):
        submit(cluster, "partial", "hospital-a",
               encrypt_packed(holder.public_context_bytes(), [9.0] * 5, layout))


@pytest.mark.timeout(60)
def test_only_a_coordinator_certificate_drives_the_compute_node(cluster) -> None:  # type: ignore[no-untyped-def]
    holder = KeyHolder.create()
    layout = Layout(3, holder.params)
    channel, stub = compute_stub(cluster, "hospital-a")
    with channel, pytest.raises(PartyError, match="hospital certificate; only a coordinator"):
        call(cluster, stub.OpenJob, compute_pb2.OpenJobRequest(
            job_id="by-a-hospital", sites=list(HOSPITALS), n_values=layout.n_values,
            params=ckks_params_to_proto(layout.params),
            params_context=holder.params_context_bytes()))


@pytest.mark.timeout(90)
def test_ciphertexts_above_4_mib_are_streamed_and_summed(cluster) -> None:  # type: ignore[no-untyped-def]
    holder = KeyHolder.create()
    layout = Layout(holder.params.slots * 12 + 1, holder.params)  # 13 ciphertexts, ~5 MB
    rng = np.random.default_rng(5)
    parts = [rng.uniform(-1000, 1000, layout.n_values) for _ in range(2)]
    open_job(cluster, "big", holder, layout, sites=("hospital-a", "hospital-b"))
    sent = {}
    for site, values in zip(("hospital-a", "hospital-b"), parts, strict=True):
        sent[site] = encrypt_packed(holder.public_context_bytes(), values.tolist(), layout)
        assert sum(len(c) for c in sent[site]) > 4 * 1024 * 1024
        submit(cluster, "big", site, sent[site])
    total = fetch(cluster, "big", layout.n_ciphertexts)
    assert not set(total) & {c for cs in sent.values() for c in cs}
    values = np.array(holder.decrypt(total, layout))
    assert np.max(np.abs(values - (parts[0] + parts[1]))) < 1e-6
    with pytest.raises(SecureCalcError, match="unknown job"):  # the sum is handed out once
        fetch(cluster, "big", layout.n_ciphertexts)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_each_party_holds_the_others_audit_heads(cluster, engine: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    from securecalc.audit.verify import verify_log

    study = cluster.study(f"audited-{engine}", engine, SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML)
    result = run_study(study)
    logs = {name: cluster.root / "audit" / f"{name}.jsonl" for name in HOSPITALS}
    logs["coordinator"] = cluster.root / "audit" / "coordinator.jsonl"
    records = {name: [json.loads(line) for line in path.read_text().splitlines()]
               for name, path in logs.items()}
    def of_this_study(record: dict) -> bool:  # CKKS rounds are jobs "<job id>.<round>"
        return str(record["data"].get("job", "")).split(".")[0] == result.job_id

    events = {r["event"] for r in records["hospital-a"] if of_this_study(r)}
    assert {"study_received", "job_start", "job_end", "peer_checkpoint"} <= events
    held = {r["data"]["signer"]: r["data"] for r in records["hospital-a"]
            if r["event"] == "peer_checkpoint" and of_this_study(r)}
    expected = {"hospital-b", "hospital-c", "coordinator"} | ({"compute"} if engine == "ckks"
                                                              else set())
    assert set(held) == expected
    for name, path in logs.items():
        assert verify_log(path, ca=cluster.pki / "ca.crt").ok, name
    # hospital-b rewrites history by dropping its tail: hospital-a's copy of its head shows it
    head = {k: v for k, v in held["hospital-b"].items() if k != "job"}
    truncated = tmp_path / "hospital-b.jsonl"
    truncated.write_text("\n".join(logs["hospital-b"].read_text().splitlines()[:2]) + "\n")
    problems = verify_log(truncated, ca=cluster.pki / "ca.crt", heads=[head]).problems
    assert any("truncated" in str(p) for p in problems)


@pytest.mark.timeout(60)
def test_submissions_must_be_signed_for_this_job_site_and_order(cluster) -> None:  # type: ignore[no-untyped-def]
    from securecalc.signing import sign_submission

    holder = KeyHolder.create()
    layout = Layout(holder.params.slots + 3, holder.params)  # two ciphertexts
    cts = encrypt_packed(holder.public_context_bytes(), [1.0] * layout.n_values, layout)
    key_a = (cluster.pki / "hospital-a.key").read_bytes()
    key_b = (cluster.pki / "hospital-b.key").read_bytes()
    open_job(cluster, "signed-1", holder, layout)
    open_job(cluster, "signed-2", holder, layout)
    with pytest.raises(CryptoError, match="not signed"):
        submit(cluster, "signed-1", "hospital-a", cts, signature=b"")
    replayed = sign_submission(key_a, "signed-2", "hospital-a", cts)  # made for another job
    with pytest.raises(CryptoError, match="no valid signature"):
        submit(cluster, "signed-1", "hospital-a", cts, signature=replayed)
    reordered = sign_submission(key_a, "signed-1", "hospital-a", cts[::-1])
    with pytest.raises(CryptoError, match="no valid signature"):
        submit(cluster, "signed-1", "hospital-a", cts, signature=reordered)
    borrowed = sign_submission(key_b, "signed-1", "hospital-a", cts)  # another site's key
    with pytest.raises(CryptoError, match="no valid signature"):
        submit(cluster, "signed-1", "hospital-a", cts, signature=borrowed)
    submit(cluster, "signed-1", "hospital-a", cts)  # the genuine one is accepted
