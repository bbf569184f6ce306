"""The study CA: files, permissions, extensions, strict X.509 verification, validity limits."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securecalc.errors import ConfigError, CryptoError
from securecalc.pki import PkiFiles, Role, init_pki, issue_certificate
from securecalc.roles import certificate_role, role_attribute

NAMES = ["hospital-a", "hospital-b", "compute", "coordinator"]
H = Role.HOSPITAL


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return init_pki(tmp_path_factory.mktemp("pki"), hospitals=NAMES[:2], compute=["compute"],
                    coordinators=["coordinator"])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


@pytest.mark.timeout(30)
def test_files_and_permissions(pki: PkiFiles) -> None:
    expected = {"ca.crt", "ca.key"} | {f"{n}{e}" for n in NAMES for e in (".crt", ".key")}
    assert {p.name for p in pki.directory.iterdir()} == expected
    for path in pki.directory.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.suffix == ".key" else 0o644), path
    key = serialization.load_pem_private_key(pki.parties["hospital-a"].key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert set(pki.parties) == set(NAMES)


@pytest.mark.timeout(30)
def test_leaf_and_ca_extensions(pki: PkiFiles) -> None:
    ca = _cert(pki.ca_cert)
    bc = _ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = _ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    ca_ski = _ext(ca, x509.SubjectKeyIdentifier).value

    leaf = _cert(pki.parties["hospital-b"].cert)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hospital-b"
    san = _ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hospital-b"]
    eku = _ext(leaf, x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    leaf_ku = _ext(leaf, x509.KeyUsage).value
    assert leaf_ku.digital_signature and not leaf_ku.key_cert_sign
    assert not _ext(leaf, x509.BasicConstraints).value.ca
    assert _ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski.digest
    _ext(leaf, x509.SubjectKeyIdentifier)
    leaf.verify_directly_issued_by(ca)


def _strict_context(server: bool, ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _strict_handshake(ca: Path, server: tuple[Path, Path], client: tuple[Path, Path], name: str):
    """A real mutual-TLS handshake with the ssl module, VERIFY_X509_STRICT on both sides."""
    sctx = _strict_context(True, ca, *server)
    cctx = _strict_context(False, ca, *client)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            with sctx.wrap_socket(conn, server_side=True) as tls:
                seen["client"] = tls.getpeercert()["subjectAltName"]
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        raw = socket.create_connection(listener.getsockname(), timeout=10)
        with cctx.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.recv(2) == b"ok"
            seen["server"] = tls.getpeercert()["subjectAltName"]
    finally:
        thread.join(10)
        listener.close()
    return seen


@pytest.mark.timeout(30)
def test_strict_x509_verification_passes(pki: PkiFiles) -> None:
    a, b = pki.parties["hospital-a"], pki.parties["hospital-b"]
    seen = _strict_handshake(pki.ca_cert, (a.cert, a.key), (b.cert, b.key), "hospital-a")
    assert seen == {"client": (("DNS", "hospital-b"),), "server": (("DNS", "hospital-a"),)}


@pytest.mark.timeout(30)
def test_strict_flag_catches_a_sloppy_certificate(pki: PkiFiles, tmp_path: Path) -> None:
    """Negative control: a leaf without AuthorityKeyIdentifier passes lax but fails strict."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    ca = _cert(pki.ca_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    sloppy = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hospital-a")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hospital-a")]), False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path, key_path = tmp_path / "s.crt", tmp_path / "s.key"
    cert_path.write_bytes(sloppy.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    b = pki.parties["hospital-b"]
    with pytest.raises(ssl.SSLCertVerificationError, match="(?i)authority key identifier"):
        _strict_handshake(pki.ca_cert, (cert_path, key_path), (b.cert, b.key), "hospital-a")


@pytest.mark.timeout(30)
def test_validity_at_most_90_days(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    files = init_pki(tmp_path / "ok", hospitals=["hospital-a"], days=90, now=now)
    leaf = _cert(files.parties["hospital-a"].cert)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=90)
    assert leaf.not_valid_before_utc <= now
    ca = _cert(files.ca_cert)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=365)
    with pytest.raises(ConfigError, match="at most 90 days"):
        init_pki(tmp_path / "long", hospitals=["hospital-a"], days=91)
    with pytest.raises(ConfigError, match="at most 90 days"):
        issue_certificate(files.ca_cert, files.ca_key, "hospital-b", tmp_path / "ok", role=H,
                          days=91)
    assert not (tmp_path / "long").exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "names, message",
    [
        (["Hospital-A"], "not a DNS label"),
        (["hospital_a"], "not a DNS label"),
        (["-a"], "not a DNS label"),
        (["a" * 64], "not a DNS label"),
        ([""], "not a DNS label"),
        (["ca"], "reserved"),
        (["hospital-a", "hospital-a"], "duplicate party names: hospital-a"),
        ([], "at least one"),
    ],
)
def test_bad_names_refused(tmp_path: Path, names: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        init_pki(tmp_path, hospitals=names)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(30)
def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    first = init_pki(tmp_path, hospitals=["hospital-a"])
    before = first.ca_cert.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_pki(tmp_path, hospitals=["hospital-a"])
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        issue_certificate(first.ca_cert, first.ca_key, "hospital-a", tmp_path, role=H)
    assert first.ca_cert.read_bytes() == before
    second = init_pki(tmp_path, hospitals=["hospital-a"], force=True)
    assert second.ca_cert.read_bytes() != before
    assert stat.S_IMODE(second.parties["hospital-a"].key.stat().st_mode) == 0o600


@pytest.mark.timeout(30)
def test_issue_later_and_expired(pki: PkiFiles, tmp_path: Path) -> None:
    late = issue_certificate(pki.ca_cert, pki.ca_key, "hospital-c", tmp_path, role=H)
    _cert(late.cert).verify_directly_issued_by(_cert(pki.ca_cert))
    past = datetime.now(UTC) - timedelta(days=100)
    old = issue_certificate(pki.ca_cert, pki.ca_key, "hospital-d", tmp_path, role=H,
                            days=30, now=past)
    assert _cert(old.cert).not_valid_after_utc < datetime.now(UTC)
    with pytest.raises(ConfigError, match="timezone-aware"):
        issue_certificate(pki.ca_cert, pki.ca_key, "x", tmp_path, role=H,
                          now=datetime(2026, 1, 1))


@pytest.mark.timeout(30)
def test_issue_checks_the_ca_files(pki: PkiFiles, tmp_path: Path) -> None:
    other = init_pki(tmp_path / "other", hospitals=["x"])
    with pytest.raises(CryptoError, match="is not the key of"):
        issue_certificate(pki.ca_cert, other.ca_key, "hospital-e", tmp_path, role=H)
    with pytest.raises(CryptoError, match="not a CA"):
        issue_certificate(other.parties["x"].cert, other.parties["x"].key, "y", tmp_path,
                          role=H)
    with pytest.raises(ConfigError, match="CA file not found"):
        issue_certificate(tmp_path / "nope.crt", pki.ca_key, "hospital-e", tmp_path, role=H)


@pytest.mark.timeout(30)
def test_every_leaf_states_its_role(pki: PkiFiles, tmp_path: Path) -> None:
    expected = {"hospital-a": Role.HOSPITAL, "hospital-b": Role.HOSPITAL,
                "compute": Role.COMPUTE, "coordinator": Role.COORDINATOR}
    for name, role in expected.items():
        pem = pki.parties[name].cert.read_bytes()
        assert certificate_role(pem) is role
        ous = _cert(pki.parties[name].cert).subject.get_attributes_for_oid(
            NameOID.ORGANIZATIONAL_UNIT_NAME)
        assert [a.value for a in ous] == [role.value]
    later = issue_certificate(pki.ca_cert, pki.ca_key, "lead", tmp_path, role=Role.COORDINATOR)
    assert certificate_role(later.cert.read_bytes()) is Role.COORDINATOR
    with pytest.raises(ConfigError, match="role must be one of"):
        issue_certificate(pki.ca_cert, pki.ca_key, "x", tmp_path, role="admin")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="duplicate party names: a"):
        init_pki(tmp_path / "dup", hospitals=["a"], coordinators=["a"])


def _self_signed(attributes: list[x509.NameAttribute]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.timeout(30)
def test_certificate_role_parsing() -> None:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "x")
    ou = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "hospital")
    assert certificate_role(_self_signed([cn])) is None  # predates roles
    assert certificate_role(_self_signed([ou, cn])) is Role.HOSPITAL
    assert role_attribute(Role.COMPUTE).value == "compute"
    with pytest.raises(CryptoError, match="several roles"):
        certificate_role(_self_signed([ou, role_attribute(Role.COORDINATOR), cn]))
    with pytest.raises(CryptoError, match="unknown role 'admin'"):
        certificate_role(_self_signed(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "admin"), cn]))
    with pytest.raises(CryptoError, match="not a PEM certificate"):
        certificate_role(b"nonsense")
