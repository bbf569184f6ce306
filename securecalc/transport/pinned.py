"""Outbound channels that reach only the pinned key, whoever the study CA is.

gRPC Python has no hook to inspect the server's certificate before a call. It does verify
partial chains, so a channel whose only trusted root is the peer's own certificate accepts
that certificate and nothing else. :func:`pinned_credentials` therefore fetches the
certificate the server at the address presents (one TLS handshake with our own certificate,
through Python's ``ssl``), checks that its key matches the pin and that it names the party we
mean, and returns credentials that trust that certificate alone. Whoever answered the first
handshake, the channel then only completes a handshake with a server that holds the pinned
key: a second certificate for the same name from the CA, with another key, is refused.

A node uses it for every connection whose address comes from a job (its MPC peers, the
compute node), since the coordinator writes the addresses.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from securecalc.errors import PartyError
from securecalc.pins import key_pin
from securecalc.transport.server import parse_host_port
from securecalc.transport.tls import TlsFiles, certificate_name

#: seconds the handshake that fetches a peer's certificate may take
FETCH_SECONDS = 5.0
#: seconds a verified certificate is reused for new channels to the same party and address
#: (a renewed certificate, same key, is fetched again after this or after a failed call)
REUSE_SECONDS = 300.0
#: most verified certificates remembered
REMEMBERED = 1024

_verified: dict[tuple[str, str, str], tuple[bytes, float]] = {}
_lock = threading.Lock()


def forget(address: str, name: str) -> None:
    """Fetch ``name``'s certificate at ``address`` again next time (a call to it failed)."""
    with _lock:
        for key in [k for k in _verified if k[:2] == (address, name)]:
            del _verified[key]


def pinned_credentials(tls: TlsFiles, *, address: str, name: str, pin: str,
                       timeout: float = FETCH_SECONDS) -> grpc.ChannelCredentials:
    """Client credentials for party ``name`` at ``address`` that trust only its certificate
    with the key ``pin``; PartyError (naming ``name``) when the server there holds another
    key or certificate name, or cannot be reached."""
    material = tls.load()
    with _lock:
        cached = _verified.get((address, name, pin))
    if cached is not None and time.monotonic() - cached[1] < REUSE_SECONDS:
        return grpc.ssl_channel_credentials(root_certificates=cached[0],
                                            private_key=material.key,
                                            certificate_chain=material.cert)
    pem = _fetch_certificate(tls, address, name, timeout)
    presented = certificate_name(pem)
    if presented != name:
        raise PartyError(name, f"at {address}: the certificate presented there names another "
                               f"party ({presented!r})")
    found = key_pin(x509.load_pem_x509_certificate(pem).public_key())
    if found != pin:
        raise PartyError(name, f"the server at {address} holds a certificate for {name} with "
                               "another key than its pin: refused (a certificate the study "
                               "CA issued to someone else)")
    with _lock:
        if len(_verified) >= REMEMBERED:  # addresses come from jobs: keep the table bounded
            _verified.clear()
        _verified[(address, name, pin)] = (pem, time.monotonic())
    return grpc.ssl_channel_credentials(root_certificates=pem, private_key=material.key,
                                        certificate_chain=material.cert)


def _fetch_certificate(tls: TlsFiles, address: str, name: str, timeout: float) -> bytes:
    host, port = parse_host_port(address)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the chain is verified; the name is checked by the caller
    context.load_verify_locations(cafile=str(tls.ca))
    context.load_cert_chain(certfile=str(tls.cert), keyfile=str(tls.key))
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=name) as wrapped:
            der = wrapped.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise PartyError(name, f"unreachable at {address} for its certificate "
                               f"({type(exc).__name__})") from None
    if not der:
        raise PartyError(name, f"the server at {address} presented no certificate")
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


__all__ = ["FETCH_SECONDS", "REUSE_SECONDS", "forget", "pinned_credentials"]
