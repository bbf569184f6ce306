"""Certificates without moving keys: a party requests, the study CA signs.

``request_certificate`` runs at the party: it makes the party's own key (written 0600, never
sent anywhere) and a certificate signing request naming the party. Only the CSR goes to the
CA operator, whose ``sign_request`` checks the CSR's signature (the requester holds the key)
and its name, and issues the party certificate with the role the CA decides (whatever the CSR
asks), at most 90 days, in the one profile of :func:`securecalc.pki.build_leaf`. Both print
the key's pin (:mod:`securecalc.pins`), which the other parties put in their ``[pins]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securecalc.errors import ConfigError, CryptoError
from securecalc.pins import key_pin
from securecalc.pki import (
    MAX_LEAF_DAYS,
    _check_days,
    _key_pem,
    _refuse_existing,
    _utc,
    _write_private,
    _write_public,
    build_leaf,
    load_ca,
    validate_name,
)
from securecalc.roles import Role, role_attribute

MAX_CSR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """What ``request_certificate`` wrote, and the pin of the new key."""

    key: Path
    csr: Path
    pin: str


@dataclass(frozen=True)
class Signed:
    """What ``sign_request`` wrote: the certificate, whom it names, its role and key pin."""

    cert: Path
    name: str
    role: Role
    pin: str


def request_certificate(name: str, out_dir: Path, *, role: Role,
                        force: bool = False) -> Request:
    """Write ``<name>.key`` (a new P-256 key, mode 0600) and ``<name>.csr`` in ``out_dir``.

    The CSR names ``name`` (CN and one SAN DNS name) and asks for ``role``; the CA decides
    the role it signs. Refuses existing files unless ``force``.
    """
    validate_name(name)
    role = _role(role)
    out_dir = Path(out_dir)
    key_path, csr_path = out_dir / f"{name}.key", out_dir / f"{name}.csr"
    if not force:
        _refuse_existing([key_path, csr_path])
    out_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([role_attribute(role),
                                    x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key), force)
    _write_public(csr_path, csr.public_bytes(serialization.Encoding.PEM), force)
    return Request(key=key_path, csr=csr_path, pin=key_pin(key.public_key()))


def sign_request(ca_cert_path: Path, ca_key_path: Path, csr_path: Path, out: Path, *,
                 role: Role, days: int = MAX_LEAF_DAYS, now: datetime | None = None,
                 force: bool = False) -> Signed:
    """Issue the certificate for the CSR in ``csr_path`` with ``role`` and write it to ``out``.

    Refuses a CSR that is not PEM, whose signature does not verify (it was altered, or made
    without the key it carries), whose name is not a valid party name (or is ambiguous), or
    whose key is not P-256; ``days`` above 90; an existing ``out`` unless ``force``.
    """
    role = _role(role)
    _check_days(days, MAX_LEAF_DAYS, "days")
    out = Path(out)
    if not force:
        _refuse_existing([out])
    csr = load_request(Path(csr_path))
    name = request_name(csr)
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise CryptoError(f"{csr_path}: the key must be an ECDSA P-256 key (make the request "
                          "with securecalc certs request)")
    ca_cert, ca_key = load_ca(Path(ca_cert_path), Path(ca_key_path))
    cert = build_leaf(ca_cert, ca_key, name, role, public, days, _utc(now))
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_public(out, cert.public_bytes(serialization.Encoding.PEM), force)
    return Signed(cert=out, name=name, role=role, pin=key_pin(public))


def load_request(path: Path) -> x509.CertificateSigningRequest:
    """The CSR in ``path``, its signature verified."""
    try:
        data = path.read_bytes()[:MAX_CSR_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CSR_BYTES:
        raise CryptoError(f"{path}: larger than any certificate signing request")
    try:
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
    except ValueError:
        raise CryptoError(f"{path}: not a PEM certificate signing request") from None
    if not valid:
        raise CryptoError(f"{path}: the request's signature does not verify (it was altered, "
                          "or not made with the key it carries); refused")
    return csr


def request_name(csr: x509.CertificateSigningRequest) -> str:
    """The party a CSR names: its CN, and its single SAN DNS name if it has one (the same)."""
    cns = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    except ValueError:
        raise CryptoError("the request carries malformed extensions") from None
    names = set(cns) | set(dns)
    if len(cns) > 1 or len(dns) > 1 or len(names) != 1:
        raise CryptoError(f"the request must name exactly one party (CN and SAN the same), "
                          f"it names {sorted(names) or 'none'}")
    try:
        return validate_name(names.pop())
    except ConfigError as exc:
        raise CryptoError(f"the request's name is invalid: {exc}") from None


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ConfigError(f"role must be one of {', '.join(Role)}, got {role!r}") from None


__all__ = ["Request", "Signed", "load_request", "request_certificate", "request_name",
           "sign_request"]
