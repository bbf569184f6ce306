"""Key pins: the SHA-256 of a SubjectPublicKeyInfo, computed from a certificate, a CSR or a key.

The format is :mod:`securecalc.core.pins`'s (``sha256:<64 hex>``). The pin survives
renewal when the key is kept, and differs for every other key, whoever signed the
certificate: this is what binds a roster name to the key its hospital generated.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from securecalc.core.pins import PIN_PREFIX
from securecalc.errors import CryptoError


def key_pin(public_key: PublicKeyTypes) -> str:
    """The pin of ``public_key``."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return PIN_PREFIX + hashlib.sha256(der).hexdigest()


def pem_pin(pem: bytes) -> str:
    """The pin of the key in a PEM certificate or certificate signing request."""
    try:
        return key_pin(x509.load_pem_x509_certificate(pem).public_key())
    except ValueError:
        pass
    try:
        return key_pin(x509.load_pem_x509_csr(pem).public_key())
    except ValueError:
        raise CryptoError("not a PEM certificate or certificate signing request") from None


def file_pin(path: Path) -> str:
    """The pin of the certificate or CSR in ``path`` (CryptoError naming the file)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return pem_pin(data)
    except CryptoError as exc:
        raise CryptoError(f"{path}: {exc}") from None


def file_pin_name(path: Path) -> str:
    """The party a certificate or CSR in ``path`` names (its single SAN DNS name, else CN)."""
    data = Path(path).read_bytes()
    try:
        subject: x509.Certificate | x509.CertificateSigningRequest = \
            x509.load_pem_x509_certificate(data)
    except ValueError:
        try:
            subject = x509.load_pem_x509_csr(data)
        except ValueError:
            raise CryptoError(f"{path}: not a PEM certificate or request") from None
    try:
        dns = subject.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    if len(dns) == 1:
        return dns[0]
    cns = subject.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if len(dns) > 1 or not cns:
        raise CryptoError(f"{path}: does not name exactly one party")
    return str(cns[0].value)


def folder_pins(folder: Path) -> dict[str, str]:
    """The pin of every party certificate ``<name>.crt`` in ``folder`` (not ``ca.crt``), by
    name: the ``[pins]`` a test or demo cluster whose keys were all made in one place uses."""
    certs = sorted(c for c in Path(folder).glob("*.crt") if c.stem != "ca")
    return {c.stem: file_pin(c) for c in certs}


__all__ = ["file_pin", "file_pin_name", "folder_pins", "key_pin", "pem_pin"]
