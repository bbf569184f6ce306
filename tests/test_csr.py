"""Request and sign: the party keeps its key, the CA operator signs what it is sent."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securecalc.csr import request_certificate, sign_request
from securecalc.errors import ConfigError, CryptoError
from securecalc.pins import file_pin
from securecalc.pki import init_ca
from securecalc.roles import Role, certificate_role
from securecalc.transport.tls import TlsFiles, certificate_name


def securecalc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def pin_in(output: str) -> str:
    return output.split("key pin of ")[1].split(": ", 1)[1].split()[0]


@pytest.mark.timeout(120)
def test_request_and_sign_round_trip_through_the_cli(tmp_path: Path) -> None:
    site, ca = tmp_path / "site", tmp_path / "ca"
    site.mkdir()
    ca.mkdir()
    assert securecalc("certs", "ca", "--dir", "study-ca", cwd=ca).returncode == 0
    made = securecalc("certs", "request", "--name", "hospital-a", "--role", "hospital",
                      "--out", ".", cwd=site)
    assert made.returncode == 0, made.stderr
    key, csr = site / "hospital-a.key", site / "hospital-a.csr"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in csr.read_bytes()
    # only the CSR travels; the CA operator's machine never holds the party's key
    (ca / "hospital-a.csr").write_bytes(csr.read_bytes())
    signed = securecalc("certs", "sign", "--ca", "study-ca", "--csr", "hospital-a.csr",
                        "--role", "hospital", "--out", "hospital-a.crt", cwd=ca)
    assert signed.returncode == 0, signed.stderr
    private = [p for p in ca.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert private == [ca / "study-ca" / "ca.key"]
    cert = ca / "hospital-a.crt"
    assert certificate_role(cert.read_bytes()) == Role.HOSPITAL
    assert certificate_name(cert.read_bytes()) == "hospital-a"
    # the pins printed at each end, and by certs pin, are the same
    printed = securecalc("certs", "pin", str(cert), cwd=ca).stdout.strip()
    assert pin_in(made.stdout) == pin_in(signed.stdout) == printed == file_pin(csr)
    # the party runs with its own key and the returned certificate
    (site / "hospital-a.crt").write_bytes(cert.read_bytes())
    (site / "ca.crt").write_bytes((ca / "study-ca" / "ca.crt").read_bytes())
    TlsFiles(site / "ca.crt", site / "hospital-a.crt", key).load()


def test_certs_init_says_it_is_for_demos(tmp_path: Path) -> None:
    done = securecalc("certs", "init", "--dir", "pki", "--hospitals", "hospital-a",
                      cwd=tmp_path)
    assert done.returncode == 0 and "demos and tests only" in done.stdout
    assert "demos and tests only" in securecalc("certs", "--help", cwd=tmp_path).stdout


def test_the_ca_decides_the_role(tmp_path: Path) -> None:
    ca_cert, ca_key = init_ca(tmp_path / "ca")
    made = request_certificate("hospital-a", tmp_path, role=Role.COORDINATOR)
    signed = sign_request(ca_cert, ca_key, made.csr, tmp_path / "a.crt", role=Role.HOSPITAL)
    assert certificate_role(signed.cert.read_bytes()) == Role.HOSPITAL
    assert signed.pin == made.pin
    with pytest.raises(ConfigError, match="at most 90 days"):
        sign_request(ca_cert, ca_key, made.csr, tmp_path / "b.crt", role=Role.HOSPITAL,
                     days=91)


def test_a_tampered_request_is_refused(tmp_path: Path) -> None:
    ca_cert, ca_key = init_ca(tmp_path / "ca")
    made = request_certificate("hospital-a", tmp_path, role=Role.HOSPITAL)
    der = x509.load_pem_x509_csr(made.csr.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    assert der.count(b"hospital-a") == 2  # CN and SAN
    tampered = x509.load_der_x509_csr(der.replace(b"hospital-a", b"hospital-b"))
    bad = tmp_path / "tampered.csr"
    bad.write_bytes(tampered.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CryptoError, match="signature does not verify"):
        sign_request(ca_cert, ca_key, bad, tmp_path / "b.crt", role=Role.HOSPITAL)
    assert not (tmp_path / "b.crt").exists()
    done = securecalc("certs", "sign", "--ca", str(tmp_path / "ca"), "--csr", str(bad),
                      "--role", "hospital", "--out", "b.crt", cwd=tmp_path)
    assert done.returncode == 1 and "signature does not verify" in done.stderr


@pytest.mark.parametrize("names", [["Hospital A"], ["ca"], ["hospital-a", "hospital-b"], []])
def test_a_request_with_an_invalid_name_is_refused(tmp_path: Path, names: list[str]) -> None:
    ca_cert, ca_key = init_ca(tmp_path / "ca")
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in names[:1]]))
    if len(names) > 1:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    csr = tmp_path / "x.csr"
    csr.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM))
    with pytest.raises(CryptoError, match="name"):
        sign_request(ca_cert, ca_key, csr, tmp_path / "x.crt", role=Role.HOSPITAL)
