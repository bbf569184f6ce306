"""Signatures over CKKS submissions, with the sender's study key (its TLS key).

A site signs the digest of everything it submits to one job: the job id, its own name, and
each ciphertext with its position. The compute node verifies the signature with the
certificate the site presented on the connection before adding anything, and records it, so
a contribution replayed into another job, re-ordered, truncated or altered is refused, and
each site's contribution is attributable afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securecalc.errors import CryptoError

_CONTEXT = b"securecalc-ckks-submission/1"


def submission_digest(job_id: str, site: str, ciphertexts: Sequence[bytes]) -> bytes:
    h = hashlib.sha256(_CONTEXT)
    for part in (job_id.encode(), site.encode(), str(len(ciphertexts)).encode()):
        h.update(len(part).to_bytes(4, "big") + part)
    for index, ciphertext in enumerate(ciphertexts):
        h.update(index.to_bytes(4, "big") + hashlib.sha256(ciphertext).digest())
    return h.digest()


def sign_submission(key_pem: bytes, job_id: str, site: str,
                    ciphertexts: Sequence[bytes]) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("the study key must be an elliptic-curve key")
    return key.sign(submission_digest(job_id, site, ciphertexts), ec.ECDSA(hashes.SHA256()))


def verify_submission(cert_pem: bytes, signature: bytes, job_id: str, site: str,
                      ciphertexts: Sequence[bytes]) -> None:
    """Raise CryptoError unless ``signature`` is ``site``'s over exactly this submission."""
    try:
        public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise CryptoError("unsupported key type")
        public_key.verify(signature, submission_digest(job_id, site, ciphertexts),
                          ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise CryptoError(f"the submission of {site} carries no valid signature") from exc
