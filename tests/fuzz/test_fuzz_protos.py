"""Fuzz every RPC's decoding: protobuf bytes, then the domain decoders a node applies.

Covers ``Message.FromString`` of every message in the generated modules (random and damaged
bytes), ``job_from_proto`` with structured near-valid jobs (real example studies, mutated,
with repeated fields just past the limits table), ``ckks_params_from_proto`` with the
layout a node builds from it, and ``store_heads`` with mutated signed checkpoints. Only
SecureCalcError (and DecodeError while parsing bytes) may escape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from securecalc.audit.events import store_heads
from securecalc.audit.log import AuditLog
from securecalc.coordinator.study import new_job
from securecalc.core.config import load_study_config
from securecalc.core.limits import ANALYSES, LEVELS, NAME_CHARS, PARTIES, SCHEMA_COLUMNS
from securecalc.engines.ckks.layout import Layout
from securecalc.pki import init_pki
from securecalc.transport.codec import ckks_params_from_proto, job_from_proto, job_to_proto
from securecalc.transport.proto import compute_pb2, node_pb2, study_pb2
from tests.fuzz._harness import EXPECTED_WIRE, MiB, bounded_memory, fuzz, outcome
from tests.fuzz._mutate import (
    deep_json,
    json_values,
    leaves,
    mutated_bytes,
    mutated_json,
    mutated_text,
)
from tests.fuzz.test_regressions import certificate_without_names

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODULES = (study_pb2, node_pb2, compute_pb2)
MESSAGES: list[type[Message]] = [
    getattr(module, name) for module in MODULES
    for name in module.DESCRIPTOR.message_types_by_name]
CHECKPOINT_FIELDS = ("signer", "count", "head", "signature", "certificate")
MEMORY = 64 * MiB  # a decoded job at the limits is a few MiB of Python objects


def _spec(study: str) -> study_pb2.JobSpec:
    return job_to_proto(new_job(load_study_config(EXAMPLES / study, insecure=True)))


# the kinds no example study uses, so that every kind's decoder sees near-valid tables
OTHER_KINDS = [
    {"kind": "quantiles", "column": "age", "probs": [0.1, 0.5, 0.9]},
    {"kind": "crosstab", "row": "sex", "col": "arm"},
    {"kind": "logreg", "y": "diabetes", "x": ["age", "sex"], "max_iter": 6},
    {"kind": "logrank", "time": "followup_days", "event": "event", "group": "arm"},
    {"kind": "correlation", "columns": ["age", "bmi"]},
    {"kind": "covariance", "columns": ["age", "sbp"]},
    {"kind": "min", "column": "age"},
    {"kind": "max", "column": "sbp"},
    {"kind": "ttest", "column": "sbp", "group": "arm", "levels": ["a", "b"]},
]


def _other_kinds(study: str) -> study_pb2.JobSpec:
    spec = _spec(study)
    del spec.analyses[:]
    for i, table in enumerate(OTHER_KINDS):
        table = {"id": f"other{i}", **table}
        spec.analyses.append(study_pb2.AnalysisSpec(id=table["id"], kind=table["kind"],
                                                    table_json=json.dumps(table)))
    return spec


SPECS = {name: _spec(name) for name in ("study-mpc.toml", "study-ckks.toml", "study-dp.toml")}
SPECS |= {"other-mpc": _other_kinds("study-mpc.toml"), "other-ckks": _other_kinds(
    "study-ckks.toml")}
ENGINES = {"study-mpc.toml": "mpc", "study-ckks.toml": "ckks", "study-dp.toml": "mpc",
           "other-mpc": "mpc", "other-ckks": "ckks"}


# --- the decoders a node and the compute node apply ------------------------------------------


class Heads:
    """A receiving audit log and a genuine signed checkpoint of another party."""

    def __init__(self, root: Path) -> None:
        pki = init_pki(root / "pki", hospitals=["hospital-a", "hospital-b"])
        self.ca_pem = pki.ca_cert.read_bytes()
        files = pki.parties["hospital-b"]
        peer = AuditLog(root / "b.jsonl", party="hospital-b", key_pem=files.key.read_bytes(),
                        cert_pem=files.cert.read_bytes())
        peer.append("job_start", job="j")
        self.checkpoint: dict[str, Any] = peer.checkpoint()
        self.log = AuditLog(root / "a.jsonl", party="hospital-a")
        self.odd_certificates = [certificate_without_names(), "", "-----BEGIN CERTIFICATE-----"]


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> Heads:
    return Heads(tmp_path_factory.mktemp("heads"))


def decode(message: Message, heads: Heads | None = None) -> None:
    """Apply to ``message`` what the servicer that receives it applies before any work."""
    if isinstance(message, study_pb2.JobSpec):
        for engine in ("mpc", "ckks"):
            outcome(lambda engine=engine: job_from_proto(message, engine))
    elif isinstance(message, study_pb2.CkksParams):
        outcome(lambda: ckks_params_from_proto(message))
    elif isinstance(message, node_pb2.MpcJobRequest):
        outcome(lambda: job_from_proto(message.spec, "mpc"))
    elif isinstance(message, node_pb2.CkksJobChunk):
        spec = message.spec
        outcome(lambda: job_from_proto(spec.spec, "ckks"))
        outcome(lambda: Layout(n_values=spec.n_values, params=ckks_params_from_proto(spec.params)))
    elif isinstance(message, compute_pb2.OpenJobRequest):
        outcome(lambda: PARTIES.check(len(message.sites), "sites"))
        outcome(lambda: Layout(n_values=message.n_values,
                               params=ckks_params_from_proto(message.params)))
    elif isinstance(message, node_pb2.HeadsRequest) and heads is not None:
        outcome(lambda: store_heads(heads.log, message.job_id, message.checkpoint_json,
                                    ca_pem=heads.ca_pem))


def check_job(spec: study_pb2.JobSpec, engine: str) -> None:
    """Decode ``spec`` off the wire; a job that decodes must encode and decode again."""
    wire = study_pb2.JobSpec.FromString(spec.SerializeToString())
    job = outcome(lambda: job_from_proto(wire, engine))
    if not isinstance(job, BaseException):
        assert len(job.parties) <= PARTIES.value and len(job.analyses) <= ANALYSES.value
        assert len(job.schema.names()) <= SCHEMA_COLUMNS.value
        job_from_proto(study_pb2.JobSpec.FromString(job_to_proto(job).SerializeToString()),
                       engine)


# --- strategies -------------------------------------------------------------------------------

names = st.text(max_size=8) | st.sampled_from(
    ["hospital-a", "hospital-b", "age", "sex", "F", "x" * (NAME_CHARS.value + 1)])


def sizes(limit: int) -> st.SearchStrategy[int]:
    """Small counts, and counts at and just past ``limit``."""
    return st.integers(0, 4) | st.sampled_from([limit, limit + 1])


@st.composite
def columns(draw: st.DrawFn, base: study_pb2.ColumnSpec | None = None) -> study_pb2.ColumnSpec:
    spec = study_pb2.ColumnSpec()
    if base is not None:
        spec.CopyFrom(base)
    if draw(st.booleans()):
        spec.name = draw(names)
    if draw(st.booleans()):
        spec.type = draw(st.sampled_from(["int", "float", "category", "", "INT", "bool"]))
    if draw(st.booleans()):
        spec.min, spec.max = draw(st.floats()), draw(st.floats())
    if draw(st.booleans()):
        n = draw(sizes(LEVELS.value))
        spec.ClearField("levels")
        spec.levels.extend(draw(st.lists(names, max_size=4)) if n < 5 else
                           [f"l{i}" for i in range(n)])
    return spec


@st.composite
def analyses(draw: st.DrawFn, base: study_pb2.AnalysisSpec) -> study_pb2.AnalysisSpec:
    try:
        table = json.loads(base.table_json)
    except (ValueError, RecursionError):  # damaged by an earlier step of the same case
        table = base.table_json
    mutated = draw(mutated_json(table))
    kind = draw(st.sampled_from([base.kind, base.kind, "mean", "quantiles", "", "nope"]))
    if isinstance(mutated, dict) and draw(st.booleans()):
        mutated["kind"] = kind  # stay consistent with the envelope, to reach the kinds
    text = json.dumps(mutated)
    damage = draw(st.integers(0, 19))
    if damage < 2:
        text = draw(mutated_text(text))
    elif damage == 2:
        text = draw(deep_json)
    return study_pb2.AnalysisSpec(id=mutated.get("id", base.id) if isinstance(mutated, dict)
                                  and isinstance(mutated.get("id"), str) else base.id,
                                  kind=kind, table_json=text)


@st.composite
def job_specs(draw: st.DrawFn) -> tuple[study_pb2.JobSpec, str]:
    """A real example job with a few fields damaged, or grown past the limits."""
    name = draw(st.sampled_from(sorted(SPECS)))
    spec = study_pb2.JobSpec()
    spec.CopyFrom(SPECS[name])
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(["study", "parties", "schema", "column", "analysis",
                                      "analyses", "counts"]))
        if field == "study":
            spec.study, spec.job_id = draw(names), draw(names)
        elif field == "parties":
            n = draw(sizes(PARTIES.value))
            spec.ClearField("parties")
            spec.parties.extend(
                study_pb2.PartyRef(name=draw(names), address=draw(names | st.just("h:1")))
                for _ in range(n) if n < 5) if n < 5 else spec.parties.extend(
                study_pb2.PartyRef(name=f"p{i}", address=f"h{i}:1") for i in range(n))
        elif field == "schema":
            n = draw(sizes(SCHEMA_COLUMNS.value))
            spec.ClearField("schema")
            spec.schema.extend(draw(st.lists(columns(), min_size=n, max_size=n)) if n < 5 else
                               [study_pb2.ColumnSpec(name=f"c{i}", type="int", min=0, max=1)
                                for i in range(n)])
        elif field == "column" and spec.schema:
            i = draw(st.integers(0, len(spec.schema) - 1))
            spec.schema[i].CopyFrom(draw(columns(spec.schema[i])))
        elif field == "analysis" and spec.analyses:
            i = draw(st.integers(0, len(spec.analyses) - 1))
            spec.analyses[i].CopyFrom(draw(analyses(spec.analyses[i])))
        elif field == "analyses" and spec.analyses:
            n = draw(sizes(ANALYSES.value))
            pool = list(spec.analyses)
            spec.ClearField("analyses")
            spec.analyses.extend(pool[i % len(pool)] for i in range(n))
        elif field == "counts":
            spec.min_cell_count = draw(st.integers(0, 2**32 - 1))
            spec.min_cohort = draw(st.integers(0, 2**32 - 1))
    return spec, draw(st.sampled_from([ENGINES[name], "mpc", "ckks"]))


@st.composite
def checkpoints(draw: st.DrawFn, heads: Heads) -> str:
    """A genuine checkpoint, damaged as JSON or as text."""
    head = dict(heads.checkpoint)
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.text(max_size=40) | deep_json)
    if choice == 1:
        head["certificate"] = draw(st.sampled_from(heads.odd_certificates))
    value = draw(mutated_json(head))
    text = json.dumps(value)
    return draw(mutated_text(text)) if choice == 2 else text


# --- targets ----------------------------------------------------------------------------------


def seeds(heads: Heads) -> list[Message]:
    """Genuine request messages whose damaged bytes make the near-valid byte inputs."""
    params = study_pb2.CkksParams(poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 40, 60],
                                  scale_bits=40)
    out: list[Message] = []
    for spec in SPECS.values():
        out += [spec, node_pb2.MpcJobRequest(spec=spec, peer_timeout_seconds=15),
                node_pb2.CkksJobChunk(spec=node_pb2.CkksJobSpec(
                    spec=spec, params=params, n_values=10, compute_name="compute"))]
    out += [compute_pb2.OpenJobRequest(job_id="j", sites=["a", "b"], n_values=10,
                                       params=params),
            node_pb2.HeadsRequest(job_id="j", checkpoint_json=[json.dumps(heads.checkpoint)])]
    return out


@st.composite
def wire_inputs(draw: st.DrawFn, heads: Heads) -> tuple[type[Message], bytes]:
    """Random bytes for any message, or a genuine request's bytes damaged."""
    if draw(st.booleans()):
        return draw(st.sampled_from(MESSAGES)), draw(st.binary(max_size=512))
    seed = draw(st.sampled_from(seeds(heads)))
    return type(seed), draw(mutated_bytes(seed.SerializeToString()))


@fuzz(300)
@given(data=st.data())
def test_random_bytes_decode(heads: Heads, data: st.DataObject) -> None:
    """Bytes off the wire: parsing raises DecodeError at worst, and decoding what parsed
    raises only our own errors."""
    message, raw = data.draw(wire_inputs(heads))
    with bounded_memory(MEMORY):
        parsed = outcome(lambda: message.FromString(raw), EXPECTED_WIRE)
        if isinstance(parsed, Message):
            decode(parsed, heads)


@fuzz(200)
@given(case=job_specs())
def test_job_specs(case: tuple[study_pb2.JobSpec, str]) -> None:
    """Near-valid jobs: refused with ConfigError (or another SecureCalcError), or decoded
    within the limits and stable through another encode/decode."""
    spec, engine = case
    with bounded_memory(MEMORY):
        check_job(spec, engine)


@fuzz(200)
@given(degree=st.sampled_from([0, 1, 1024, 4096, 8192, 8193, 32768, 2**32 - 1])
       | st.integers(0, 2**32 - 1),
       moduli=st.lists(st.integers(0, 2**32 - 1) | st.sampled_from([2, 40, 60, 61]),
                       max_size=8) | st.just([60] * 10_000),
       scale=st.integers(0, 2**32 - 1) | st.integers(0, 70),
       n_values=st.integers(0, 2**32 - 1) | st.integers(0, 3_000_000),
       sites=st.lists(names, max_size=3) | st.sampled_from([[f"s{i}" for i in range(257)]]))
def test_ckks_job_requests(degree: int, moduli: list[int], scale: int, n_values: int,
                           sites: list[str]) -> None:
    """OpenJob and RunCkks: parameters and layout from any uint32 fields."""
    request = compute_pb2.OpenJobRequest(
        job_id="j", sites=sites, n_values=n_values,
        params=study_pb2.CkksParams(poly_modulus_degree=degree, coeff_mod_bit_sizes=moduli,
                                    scale_bits=scale))
    with bounded_memory(MEMORY):
        decode(compute_pb2.OpenJobRequest.FromString(request.SerializeToString()))
        layout = outcome(lambda: Layout(n_values, ckks_params_from_proto(request.params)))
        if isinstance(layout, Layout):
            assert 1 <= layout.n_ciphertexts <= 512 and sum(layout.sizes()) == n_values


@fuzz(150)
@given(data=st.data())
def test_heads_requests(heads: Heads, data: st.DataObject) -> None:
    """StoreHeads: damaged checkpoints are refused with ProtocolError, never crash."""
    request = node_pb2.HeadsRequest(
        job_id=data.draw(names),
        checkpoint_json=data.draw(st.lists(checkpoints(heads), min_size=1, max_size=3)),
        outcomes=[node_pb2.ReleaseOutcome(analysis_id="a", status="released")])
    allowed = data.draw(st.none() | st.just(["hospital-a", "hospital-b"]))
    with bounded_memory(MEMORY):
        stored = outcome(lambda: store_heads(
            heads.log, request.job_id, request.checkpoint_json,
            ca_pem=data.draw(st.sampled_from([heads.ca_pem, None])), allowed=allowed))
    if isinstance(stored, int) and stored:  # the record holds the signed fields, our job id
        lines = heads.log.path.read_text().splitlines()[-stored:]
        for record in map(json.loads, lines):
            assert record["data"]["job"] == request.job_id
            assert set(record["data"]) <= {"job", *CHECKPOINT_FIELDS}


def test_genuine_inputs_decode(heads: Heads) -> None:
    """The seeds themselves are valid, so mutations start from inputs that reach deep."""
    for name, spec in SPECS.items():
        job_from_proto(spec, ENGINES[name])
    assert store_heads(heads.log, "j", [json.dumps(heads.checkpoint)], ca_pem=heads.ca_pem) == 1


__all__ = ["decode", "json_values", "leaves"]
