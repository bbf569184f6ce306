"""A small private CA for a study: one CA, one certificate per party (node, compute, coordinator).

In production each party makes its own key and a CSR (:mod:`securecalc.csr`, ``securecalc
certs request``) and the CA operator signs the CSR (``certs sign``): no private key leaves its
machine. ``init_pki`` makes every key in one place and is meant for demos and tests only:
whoever runs it holds every party's key. The CA key is used only here, never by a running
node. Keys are ECDSA P-256, written 0600. Leaf certificates name the party in both the
subject CN and a single SAN DNS name, state its role (:mod:`securecalc.roles`) as the subject's
OU, carry serverAuth+clientAuth (a node is server and client at once), live at most 90 days,
and pass OpenSSL's strict X.509 checks (``ssl.VERIFY_X509_STRICT``, the default from Python
3.13 on).

Time is injectable (``now``) so tests can mint expired or not-yet-valid certificates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securecalc.errors import ConfigError, CryptoError
from securecalc.roles import Role, role_attribute

if TYPE_CHECKING:
    from securecalc.transport.tls import TlsFiles

MAX_LEAF_DAYS = 90
"""Longest validity of a party certificate; longer requests are refused."""
DEFAULT_CA_DAYS = 5 * 365
CLOCK_SKEW = timedelta(minutes=5)
"""Certificates start this much before ``now`` so a peer whose clock lags still accepts them."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_RESERVED = frozenset({"ca"})  # would collide with ca.crt / ca.key


@dataclass(frozen=True)
class PartyFiles:
    """Certificate and key of one party."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiFiles:
    """What ``init_pki`` wrote."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    parties: dict[str, PartyFiles]

    def tls_files(self, name: str) -> TlsFiles:
        """The ``TlsFiles`` a node called ``name`` runs with (CA cert, own cert, own key)."""
        from securecalc.transport.tls import TlsFiles

        party = self.parties[name]
        return TlsFiles(ca=self.ca_cert, cert=party.cert, key=party.key)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a lowercase DNS label usable as a party name, else raise."""
    if not isinstance(name, str) or not _LABEL.fullmatch(name):
        raise ConfigError(
            f"party name {name!r} is not a DNS label: use 1-63 lowercase letters, digits and "
            "hyphens, not starting or ending with a hyphen (e.g. 'hospital-a')"
        )
    if name in _RESERVED:
        raise ConfigError(f"party name {name!r} is reserved (it would overwrite the CA files)")
    return name


def init_pki(
    directory: Path,
    *,
    hospitals: Sequence[str] = (),
    compute: Sequence[str] = (),
    coordinators: Sequence[str] = (),
    days: int = MAX_LEAF_DAYS,
    now: datetime | None = None,
    ca_days: int = DEFAULT_CA_DAYS,
    ca_name: str = "securecalc study CA",
    force: bool = False,
) -> PkiFiles:
    """Create ``ca.crt``/``ca.key`` and ``<name>.crt``/``<name>.key`` for every name, each
    certificate stating its role (hospital, compute or coordinator).

    Refuses invalid or duplicate names, ``days`` above 90, and existing files unless ``force``.
    """
    roles: dict[str, Role] = {}
    names: list[str] = []
    for role, group in ((Role.HOSPITAL, hospitals), (Role.COMPUTE, compute),
                        (Role.COORDINATOR, coordinators)):
        if isinstance(group, str):
            raise ConfigError(f"{role.value} names must be a sequence of party names, "
                              "not one string")
        for name in group:
            roles[validate_name(name)] = role
            names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"duplicate party names: {', '.join(duplicates)}")
    if not names:
        raise ConfigError("at least one party name is needed")
    _check_days(days, MAX_LEAF_DAYS, "days")
    _check_days(ca_days, None, "ca_days")
    directory = Path(directory)
    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    targets = [ca_cert_path, ca_key_path]
    targets += [directory / f"{n}{ext}" for n in names for ext in (".crt", ".key")]
    if not force:
        _refuse_existing(targets)
    directory.mkdir(parents=True, exist_ok=True)

    now = _utc(now)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _build_ca(ca_key, ca_name, now, ca_days)
    _write_private(ca_key_path, _key_pem(ca_key), force)
    _write_public(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM), force)
    parties = {name: _issue(ca_cert, ca_key, name, role, directory, days, now, force)
               for name, role in roles.items()}
    return PkiFiles(directory, ca_cert_path, ca_key_path, parties)


def init_ca(directory: Path, *, days: int = DEFAULT_CA_DAYS, now: datetime | None = None,
            ca_name: str = "securecalc study CA", force: bool = False) -> tuple[Path, Path]:
    """Create only ``ca.crt``/``ca.key`` in ``directory``, for the request-and-sign path:
    parties send CSRs (``certs request``), the CA operator signs them (``certs sign``)."""
    _check_days(days, None, "days")
    directory = Path(directory)
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not force:
        _refuse_existing([cert_path, key_path])
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(key_path, _key_pem(key), force)
    _write_public(cert_path, _build_ca(key, ca_name, _utc(now), days)
                  .public_bytes(serialization.Encoding.PEM), force)
    return cert_path, key_path


def issue_certificate(
    ca_cert_path: Path,
    ca_key_path: Path,
    name: str,
    out_dir: Path,
    *,
    role: Role,
    days: int = MAX_LEAF_DAYS,
    now: datetime | None = None,
    force: bool = False,
) -> PartyFiles:
    """Issue ``<name>.crt``/``<name>.key`` for a party of ``role`` in ``out_dir`` from an
    existing CA.

    For adding a party later, renewing (``force=True``), and tests (``now`` in the past gives an
    expired certificate). The leaf never outlives the CA: its end is clamped to the CA's.
    """
    validate_name(name)
    if role not in tuple(Role):
        raise ConfigError(f"role must be one of {', '.join(Role)}, got {role!r}")
    _check_days(days, MAX_LEAF_DAYS, "days")
    out_dir = Path(out_dir)
    if not force:
        _refuse_existing([out_dir / f"{name}.crt", out_dir / f"{name}.key"])
    ca_cert, ca_key = load_ca(Path(ca_cert_path), Path(ca_key_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    return _issue(ca_cert, ca_key, name, role, out_dir, days, _utc(now), force)


def load_ca(
    ca_cert_path: Path, ca_key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load a CA certificate and its key, checking that they belong together."""
    for path in (ca_cert_path, ca_key_path):
        if not path.is_file():
            raise ConfigError(f"CA file not found: {path}")
    try:
        cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    except ValueError as exc:
        raise CryptoError(f"{ca_cert_path}: not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"{ca_key_path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError(f"{ca_key_path}: expected an EC private key")
    if key.public_key() != cert.public_key():
        raise CryptoError(f"{ca_key_path} is not the key of {ca_cert_path}")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise CryptoError(f"{ca_cert_path} is not a CA certificate")
    return cert, key


# -- internals -------------------------------------------------------------------------------


def _check_days(days: int, maximum: int | None, what: str) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"{what} must be a positive whole number of days, got {days!r}")
    if maximum is not None and days > maximum:
        raise ConfigError(
            f"{what}={days}: party certificates live at most {maximum} days; renew instead"
        )


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ConfigError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _refuse_existing(paths: Sequence[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise ConfigError(
            f"refusing to overwrite {', '.join(existing)} (pass force=True to replace)"
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes, force: bool) -> None:
    """Write a key readable by its owner only; the mode is set at creation, never widened."""
    if force:
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # in case the umask was stricter than needed, or ignored


def _write_public(path: Path, data: bytes, force: bool) -> None:
    if force:
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _build_ca(
    key: ec.EllipticCurvePrivateKey, ca_name: str, now: datetime, days: int
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    start = now - CLOCK_SKEW
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    name: str,
    role: Role,
    out_dir: Path,
    days: int,
    now: datetime,
    force: bool,
) -> PartyFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_leaf(ca_cert, ca_key, name, role, key.public_key(), days, now)
    files = PartyFiles(cert=out_dir / f"{name}.crt", key=out_dir / f"{name}.key")
    _write_private(files.key, _key_pem(key), force)
    _write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM), force)
    return files


def build_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    name: str,
    role: Role,
    public: ec.EllipticCurvePublicKey,
    days: int,
    now: datetime,
) -> x509.Certificate:
    """The party certificate of ``name`` with ``role`` for the key ``public``, signed by the
    CA: the one profile of every leaf (``init_pki``, ``issue_certificate``, signed CSRs)."""
    start = now - CLOCK_SKEW
    end = min(start + timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([role_attribute(role),
                                 x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


__all__ = [
    "MAX_LEAF_DAYS",
    "PartyFiles",
    "PkiFiles",
    "Role",
    "build_leaf",
    "init_ca",
    "init_pki",
    "issue_certificate",
    "load_ca",
    "validate_name",
]
