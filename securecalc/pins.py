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


__all__ = ["file_pin", "key_pin", "pem_pin"]
