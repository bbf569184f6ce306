"""Who is calling: the party named by the peer's certificate (or, insecure, by a header).

With mutual TLS the handshake already proved the peer holds a certificate from our CA; these
helpers bind that certificate's name to the parties of the job, its key to the pin this party
configured for that name (:meth:`Caller.require`), and its role (stated by the CA,
:mod:`securecalc.roles`) to the method, so a second certificate the CA issued for a pinned
name, a hospital of another study (same CA), a party
calling a method meant for another role, or a coordinator posing as a party is refused. In
insecure (development) mode there is no certificate: names are claimed in a header and roles
cannot be proven, so they are not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import NoReturn

import grpc

from securecalc.errors import CryptoError
from securecalc.roles import Role, certificate_role
from securecalc.transport.channel import PARTY_HEADER
from securecalc.transport.interface import Caller, CallerRefused

_LOG = logging.getLogger(__name__)


def peer_name(context: grpc.ServicerContext, *, insecure: bool) -> str | None:
    """The calling party's name, or None if it cannot be told.

    TLS: the single SAN DNS name of the client certificate, else its CN; a certificate with
    several SAN names is ambiguous and gives None. Insecure (development): the
    ``x-securecalc-party`` header, which anyone can forge. The header is ignored with TLS.
    """
    if insecure:
        values = [v for k, v in context.invocation_metadata() if k == PARTY_HEADER]
        if len(values) != 1 or not isinstance(values[0], str):
            return None
        return values[0]
    auth = context.auth_context()
    if _first(auth.get("transport_security_type")) != "ssl":
        return None
    sans = {_decode(v) for v in auth.get("x509_subject_alternative_name", ())}
    if len(sans) == 1:
        return sans.pop()
    if sans:
        _LOG.warning("client certificate names several parties: %s", sorted(sans))
        return None
    cn = _first(auth.get("x509_common_name"))
    return cn or None


def require_peer(context: grpc.ServicerContext, allowed: Collection[str], *, role: Role,
                 insecure: bool, pins: Mapping[str, str]) -> str:
    """Return the caller's party name if its key matches its pin, its certificate states
    ``role`` and names a party in ``allowed``; abort PERMISSION_DENIED otherwise (insecure:
    the name only)."""
    try:
        return caller_of(context, insecure=insecure, pins=pins).require(allowed, role)
    except CallerRefused as exc:
        _deny(context, str(exc))


def caller_of(context: grpc.ServicerContext, *, insecure: bool,
              pins: Mapping[str, str]) -> Caller:
    """The authenticated caller of this call, carrying this server's key ``pins`` for the
    role to check (:meth:`Caller.require`); abort PERMISSION_DENIED when it cannot be told
    (no name, no role, an unusable certificate)."""
    name = peer_name(context, insecure=insecure)
    if name is None:
        what = f"no {PARTY_HEADER} header" if insecure else "no usable certificate name"
        _deny(context, f"caller presented {what}; cannot tell which party it is")
    if insecure:
        return Caller(name, None)
    stated = _peer_role(context)
    if stated is None:
        _deny(context, f"the certificate of {name} states no role (it predates roles): "
                       "the study CA must reissue it with one (securecalc certs init "
                       "--hospitals/--compute/--coordinators)")
    try:
        return Caller(name, stated, peer_certificate(context), pins)
    except CallerRefused as exc:  # a pinned name with another key
        _deny(context, str(exc))


def _peer_role(context: grpc.ServicerContext) -> Role | None:
    pem = peer_certificate(context)
    if pem is None:
        _deny(context, "caller presented no certificate")
    try:
        return certificate_role(pem)
    except CryptoError as exc:
        _deny(context, f"unusable certificate: {exc}")


def _deny(context: grpc.ServicerContext, message: str) -> NoReturn:
    _LOG.warning("refused %s: %s", context.peer(), message)
    context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _first(values: Sequence[bytes | str] | None) -> str | None:
    return _decode(values[0]) if values else None


def peer_certificate(context: grpc.ServicerContext) -> bytes | None:
    """The PEM certificate the caller presented (None without TLS)."""
    values = context.auth_context().get("x509_pem_cert")
    return bytes(values[0]) if values else None


__all__ = ["caller_of", "peer_certificate", "peer_name", "require_peer"]
