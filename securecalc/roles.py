"""The role a certificate states: hospital, compute or coordinator, set by the study CA.

A party's name says who it is; its role says what it may do. The study CA writes the role as
the certificate subject's organizationalUnitName (the encoding Hyperledger Fabric's NodeOUs
use), so a node can tell a coordinator's certificate from a hospital's whatever the job
claims: a coordinator can never be a party of a computation, nor a compute node.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import NameOID

from securecalc.errors import CryptoError


class Role(StrEnum):
    HOSPITAL = "hospital"
    COMPUTE = "compute"
    COORDINATOR = "coordinator"


def role_attribute(role: Role) -> x509.NameAttribute:
    """The subject attribute that states ``role`` in a leaf certificate."""
    return x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, Role(role).value)


def certificate_role(cert_pem: bytes) -> Role | None:
    """The role the certificate in ``cert_pem`` states; None if it states none (it predates
    roles). CryptoError for an unreadable certificate, several roles or an unknown one."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise CryptoError("not a PEM certificate") from None
    values = [a.value for a in cert.subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if not values:
        return None
    if len(values) > 1:
        raise CryptoError(f"certificate states several roles ({', '.join(map(str, values))})")
    try:
        return Role(str(values[0]))
    except ValueError:
        raise CryptoError(f"certificate states an unknown role {values[0]!r}") from None


__all__ = ["Role", "certificate_role", "role_attribute"]
