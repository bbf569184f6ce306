"""Inputs the fuzz targets found crashing, kept as plain tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securecalc.audit.events import store_heads
from securecalc.audit.log import AuditLog
from securecalc.core.config import load_compute_config, load_node_config, load_study_config
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError, ProtocolError, WhereError
from securecalc.pki import init_pki
from securecalc.transport.codec import job_from_proto
from securecalc.transport.proto import study_pb2

pytestmark = pytest.mark.timeout(60)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def certificate_without_names() -> str:
    """A valid self-signed certificate with no subjectAltName extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "hospital-b")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], bytes, Path]:
    root = tmp_path_factory.mktemp("regressions")
    pki = init_pki(root / "pki", hospitals=["hospital-a", "hospital-b"])
    files = pki.parties["hospital-b"]
    peer = AuditLog(root / "b.jsonl", party="hospital-b", key_pem=files.key.read_bytes(),
                    cert_pem=files.cert.read_bytes())
    peer.append("job_start", job="j")
    return peer.checkpoint(), pki.ca_cert.read_bytes(), root


@pytest.mark.parametrize("change", [
    {"certificate": certificate_without_names()},  # ExtensionNotFound escaped
    {"certificate": 7},  # AttributeError on int.encode
    {"count": 1e999},  # OverflowError from int(inf)
    {"count": True},
    {"signer": ["hospital-b"]},  # unhashable / non-string signer
    {"signature": None},
])
def test_malformed_checkpoints_are_refused(checkpoint: tuple[dict[str, object], bytes, Path],
                                           change: dict[str, object]) -> None:
    head, ca_pem, root = checkpoint
    log = AuditLog(root / "a.jsonl", party="hospital-a")
    raw = json.dumps({**head, **change})
    with pytest.raises(ProtocolError, match="checkpoint rejected"):
        store_heads(log, "j", [raw], ca_pem=ca_pem)
    with pytest.raises(ProtocolError, match="checkpoint rejected"):
        store_heads(log, "j", [raw], ca_pem=None)


def test_where_integer_beyond_float_range_is_refused() -> None:
    """An int literal too large for a float parsed, then overflowed when evaluated."""
    schema = Schema({"x": Column("x", "int", min=-5, max=5)})
    with pytest.raises(WhereError, match="out of range"):
        parse_where("x == " + "1" * 400, schema)
    with pytest.raises(WhereError, match="out of range"):
        parse_where("x in [1, -" + "9" * 310 + "]", schema)
    table = Table.from_columns(schema, {"x": [1, 5]})
    assert parse_where("x < " + "9" * 300, schema).evaluate(table).tolist() == [True, True]


@pytest.mark.parametrize(("example", "loader", "line"), [
    ("hospital-a.toml", load_node_config, 'path = "data/hospital-a.csv"'),
    ("study-mpc.toml", load_study_config, 'ca = "pki/ca.crt"'),
    ("compute.toml", load_compute_config, 'key = "pki/compute.key"'),
])
def test_path_with_nul_byte_is_refused(tmp_path: Path, example: str, loader: Any,
                                       line: str) -> None:
    """A path holding a NUL byte escaped the loaders as ValueError."""
    text = (EXAMPLES / example).read_text()
    assert line in text
    path = tmp_path / example
    path.write_text(text.replace(line, line[:-2] + '\\u0000"'))
    with pytest.raises(ConfigError, match="not a usable path"):
        loader(path)


@pytest.mark.parametrize("loader", [load_node_config, load_compute_config, load_study_config])
@pytest.mark.parametrize("opener", ["[", "{a = "])
def test_deeply_nested_toml_is_refused(tmp_path: Path, loader: Any, opener: str) -> None:
    """tomllib raised RecursionError through the loaders on a deeply nested value."""
    path = tmp_path / "deep.toml"
    path.write_text("x = " + opener * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        loader(path)


DEEP_JSON = ["[" * 100_000, '{"a":' * 100_000]


@pytest.mark.parametrize("text", DEEP_JSON)
def test_deeply_nested_analysis_json_is_refused(text: str) -> None:
    """json.loads raised RecursionError through job_from_proto on a deeply nested table."""
    spec = study_pb2.JobSpec(study="s", job_id="j", analyses=[
        study_pb2.AnalysisSpec(id="a", kind="mean", table_json=text)])
    with pytest.raises(ConfigError, match="not valid JSON"):
        job_from_proto(spec, "mpc")


@pytest.mark.parametrize("text", DEEP_JSON)
def test_deeply_nested_checkpoint_is_refused(
        checkpoint: tuple[dict[str, object], bytes, Path], text: str) -> None:
    """The same RecursionError escaped store_heads on a deeply nested checkpoint."""
    _, ca_pem, root = checkpoint
    with pytest.raises(ProtocolError, match="malformed checkpoint"):
        store_heads(AuditLog(root / "a.jsonl", party="hospital-a"), "j", [text], ca_pem=ca_pem)


def test_stored_checkpoint_keeps_only_signed_fields(
        checkpoint: tuple[dict[str, object], bytes, Path]) -> None:
    """Unsigned fields added to a genuine checkpoint, "job" among them, reached the log."""
    head, ca_pem, root = checkpoint
    log = AuditLog(root / "fields.jsonl", party="hospital-a")
    raw = json.dumps({**head, "job": "another-job", "note": "x" * 1000})
    assert store_heads(log, "this-job", [raw], ca_pem=ca_pem) == 1
    record = json.loads(log.path.read_text().splitlines()[-1])
    assert record["data"] == {"job": "this-job", **head}
