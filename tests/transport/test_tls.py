"""Loading and checking a node's TLS files before gRPC sees them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from securecalc.errors import ConfigError, CryptoError
from securecalc.pki import PkiFiles, Role, init_pki, issue_certificate
from securecalc.transport.tls import TlsFiles, certificate_name, check_validity


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return init_pki(tmp_path_factory.mktemp("pki"), hospitals=["hospital-a", "hospital-b"])


@pytest.mark.timeout(30)
def test_load_gives_pem_bytes(pki: PkiFiles) -> None:
    tls = TlsFiles.in_directory(pki.directory, "hospital-a")
    assert tls == pki.tls_files("hospital-a")
    material = tls.load()
    assert material.ca == pki.ca_cert.read_bytes()
    assert material.cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert material.key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert certificate_name(material.cert) == "hospital-a"


@pytest.mark.timeout(30)
def test_missing_file_is_named(pki: PkiFiles, tmp_path: Path) -> None:
    tls = TlsFiles(ca=pki.ca_cert, cert=tmp_path / "gone.crt", key=pki.parties["hospital-a"].key)
    with pytest.raises(ConfigError, match=r"TLS certificate not found: .*gone\.crt"):
        tls.load()
    tls = TlsFiles(ca=tmp_path / "ca.crt", cert=pki.ca_cert, key=pki.ca_key)
    with pytest.raises(ConfigError, match=r"TLS CA certificate not found"):
        tls.load()


@pytest.mark.timeout(30)
def test_wrong_files_are_named(pki: PkiFiles, tmp_path: Path) -> None:
    a, b = pki.parties["hospital-a"], pki.parties["hospital-b"]
    with pytest.raises(CryptoError, match=r"hospital-b\.key is not the private key of"):
        TlsFiles(ca=pki.ca_cert, cert=a.cert, key=b.key).load()
    with pytest.raises(CryptoError, match="not a PEM certificate"):
        TlsFiles(ca=pki.ca_cert, cert=a.key, key=a.key).load()
    with pytest.raises(CryptoError, match="not an unencrypted PEM private key"):
        TlsFiles(ca=pki.ca_cert, cert=a.cert, key=a.cert).load()
    other = init_pki(tmp_path, hospitals=["hospital-a"])
    with pytest.raises(CryptoError, match="was not issued by the CA"):
        TlsFiles(
            ca=pki.ca_cert,
            cert=other.parties["hospital-a"].cert,
            key=other.parties["hospital-a"].key,
        ).load()


@pytest.mark.timeout(30)
def test_expired_and_not_yet_valid(pki: PkiFiles, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=100)
    old = issue_certificate(pki.ca_cert, pki.ca_key, "old", tmp_path, role=Role.HOSPITAL,
                            days=30, now=past)
    with pytest.raises(CryptoError, match=r"our certificate .*old\.crt expired on"):
        TlsFiles(pki.ca_cert, old.cert, old.key).load()
    future = datetime.now(UTC) + timedelta(days=3)
    early = issue_certificate(pki.ca_cert, pki.ca_key, "early", tmp_path, role=Role.HOSPITAL,
                              now=future)
    with pytest.raises(CryptoError, match="not valid before .*clock"):
        check_validity(early.cert.read_bytes())
    check_validity(early.cert.read_bytes(), now=future + timedelta(days=1))


@pytest.mark.timeout(30)
def test_warns_near_expiry(pki: PkiFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    soon = issue_certificate(pki.ca_cert, pki.ca_key, "soon", tmp_path, role=Role.HOSPITAL,
                             days=3)
    with caplog.at_level(logging.WARNING):
        check_validity(soon.cert.read_bytes(), what="our certificate")
    assert "our certificate expires on" in caplog.text


@pytest.mark.timeout(30)
def test_certificate_name_falls_back_to_cn(pki: PkiFiles) -> None:
    # The CA certificate has a CN but no SAN.
    assert certificate_name(pki.ca_cert.read_bytes()) == "securecalc study CA"
    with pytest.raises(CryptoError, match="not a PEM certificate"):
        certificate_name(b"junk")
