"""The three TLS files a node runs with, loaded and checked before gRPC sees them.

gRPC's own errors for a missing file, a key that does not match its certificate or an expired
certificate are cryptic or come late (at the first handshake); these checks name the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from securecalc.errors import ConfigError, CryptoError

_LOG = logging.getLogger(__name__)
EXPIRY_WARNING = timedelta(days=14)


class TlsMaterial(NamedTuple):
    """PEM bytes as gRPC credentials want them."""

    ca: bytes
    cert: bytes
    key: bytes


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA certificate, this node's certificate and its private key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: Path, name: str) -> TlsFiles:
        """The layout ``init_pki`` writes: ``ca.crt``, ``<name>.crt``, ``<name>.key``."""
        directory = Path(directory)
        return cls(directory / "ca.crt", directory / f"{name}.crt", directory / f"{name}.key")

    def load(self, *, now: datetime | None = None) -> TlsMaterial:
        """Read and check the three files.

        Raises ConfigError naming a missing or unreadable file, CryptoError for a file that is
        not what it should be, a key that does not match the certificate, or a certificate
        that is expired or not yet valid at ``now``.
        """
        ca, cert, key = (_read(Path(p), what) for p, what in self._labelled())
        ca_certs = _parse_certs(ca, self.ca)
        own = _parse_certs(cert, self.cert)[0]
        try:
            private = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"{self.key}: not an unencrypted PEM private key ({exc})") from None
        if private.public_key() != own.public_key():
            raise CryptoError(f"{self.key} is not the private key of {self.cert}")
        if not any(_issued_by(own, c) for c in ca_certs):
            raise CryptoError(f"{self.cert} was not issued by the CA in {self.ca}")
        check_validity(cert, now=now, what=f"our certificate {self.cert}")
        if Path(self.key).stat().st_mode & 0o077:
            _LOG.warning("%s is readable by other users; chmod 600 it", self.key)
        return TlsMaterial(ca=ca, cert=cert, key=key)

    def _labelled(self) -> tuple[tuple[Path, str], ...]:
        return (
            (self.ca, "CA certificate"),
            (self.cert, "certificate"),
            (self.key, "private key"),
        )


def certificate_name(cert_pem: bytes) -> str:
    """The party a certificate names: its single SAN DNS name, else its subject CN."""
    cert = _parse_certs(cert_pem, "certificate")[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    if len(dns) == 1:
        return dns[0]
    if len(dns) > 1:
        raise CryptoError(f"certificate names several parties ({', '.join(dns)}); expected one")
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not cns:
        raise CryptoError("certificate names no party (no SAN DNS name, no CN)")
    return str(cns[0].value)


def check_validity(
    cert_pem: bytes, *, now: datetime | None = None, what: str = "our certificate"
) -> None:
    """Raise CryptoError if the certificate is expired or not yet valid; warn near expiry."""
    cert = _parse_certs(cert_pem, what)[0]
    now = datetime.now(UTC) if now is None else now
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        raise CryptoError(
            f"{what} is not valid before {start:%Y-%m-%d %H:%M} UTC (check this machine's clock)"
        )
    if now >= end:
        raise CryptoError(f"{what} expired on {end:%Y-%m-%d %H:%M} UTC; issue a new one")
    if end - now < EXPIRY_WARNING:
        _LOG.warning("%s expires on %s UTC", what, f"{end:%Y-%m-%d %H:%M}")


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ConfigError(f"TLS {what} not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS {what} {path}: {exc.strerror}") from None


def _parse_certs(pem: bytes, source: object) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise CryptoError(f"{source}: not a PEM certificate")
    return certs


__all__ = ["TlsFiles", "TlsMaterial", "certificate_name", "check_validity"]
