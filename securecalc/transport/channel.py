"""Client channels to another party: mutual TLS bound to the expected party, keepalive, limits."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from securecalc.errors import ConfigError, PartyError
from securecalc.pki import validate_name
from securecalc.transport.server import DEFAULT_MAX_MESSAGE_BYTES, parse_host_port
from securecalc.transport.tls import TlsFiles, certificate_name

_LOG = logging.getLogger(__name__)

PARTY_HEADER = "x-securecalc-party"
"""Metadata naming the calling party on insecure (development) channels only."""


def channel_options(
    expected_name: str | None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> list[tuple[str, Any]]:
    """Channel arguments of every securecalc client channel (``expected_name`` only with TLS)."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Liveness: ping after 5 s without activity, drop the connection when a ping is not
        # answered within 5 s, also while no call is active and while no data flows (long MPC
        # waits). A frozen peer is detected in about 10 s even on a call without deadline.
        ("grpc.keepalive_time_ms", 5_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        # grpc 1.85 times keepalive pings out by this (default 60 s), not keepalive_timeout.
        ("grpc.http2.ping_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # A restarted peer is reconnected within seconds, not after backoff grew to 2 min.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        # A connection attempt (TCP + TLS handshake) gives up after 5 s instead of 20 s: a
        # frozen process still accepts TCP connections but never completes the handshake.
        ("grpc.min_reconnect_backoff_ms", 5_000),
        # Never through an HTTP proxy: gRPC otherwise honours grpc_proxy/https_proxy/http_proxy
        # from the environment, and party traffic must go straight to the party we name (a
        # proxy would see who talks to whom and when, and could stall or reroute studies).
        ("grpc.enable_http_proxy", 0),
    ]
    if expected_name is not None:
        # The server's certificate must name the party we mean to reach, whatever the address.
        options.insert(0, ("grpc.ssl_target_name_override", expected_name))
    return options


class PartyChannel(grpc.Channel):
    """A ``grpc.Channel`` that remembers which party and address it reaches."""

    def __init__(self, inner: grpc.Channel, *, party: str, address: str):
        self._inner = inner
        self.party = party
        self.address = address

    def subscribe(self, callback: Callable[..., Any], try_to_connect: bool = False) -> None:
        self._inner.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[..., Any]) -> None:
        self._inner.unsubscribe(callback)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_stream(method, *args, **kwargs)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> PartyChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PartyChannel(party={self.party!r}, address={self.address!r})"


def create_channel(
    address: str,
    *,
    tls: TlsFiles | None,
    expected_name: str,
    own_name: str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> PartyChannel:
    """Open a channel to the party ``expected_name`` at ``address`` (``host:port``).

    With TLS the channel presents our certificate and accepts only a server certificate from
    our CA that names ``expected_name``; if ``own_name`` is given our certificate must name it.
    ``tls=None`` (``--insecure`` development mode) sends ``own_name`` in the
    ``x-securecalc-party`` header of every call instead. The channel connects lazily: use
    ``wait_ready`` or per-call deadlines.
    """
    credentials = client_credentials(tls, own_name)
    return _open(address, credentials, expected_name=expected_name, own_name=own_name,
                 max_message_bytes=max_message_bytes)


def create_pinned_channel(address: str, *, tls: TlsFiles | None, expected_name: str,
                          own_name: str, pins: Mapping[str, str],
                          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> PartyChannel:
    """As :func:`create_channel`, for an address taken from a job: with TLS the channel
    trusts only the certificate of ``expected_name`` whose key matches its pin in ``pins``
    (:mod:`securecalc.transport.pinned`); PartyError when there is no pin or another key."""
    if tls is None:
        return create_channel(address, tls=None, expected_name=expected_name,
                              own_name=own_name, max_message_bytes=max_message_bytes)
    pin = pins.get(expected_name)
    if pin is None:
        raise PartyError(expected_name, "has no key pin in this node's [pins]: nothing is "
                                        "sent to it")
    from securecalc.transport.pinned import pinned_credentials

    credentials = pinned_credentials(tls, address=address, name=expected_name, pin=pin)
    return _open(address, credentials, expected_name=expected_name, own_name=own_name,
                 max_message_bytes=max_message_bytes)


def client_credentials(tls: TlsFiles | None,
                       own_name: str | None = None) -> grpc.ChannelCredentials | None:
    """Our TLS client credentials (None in insecure mode), loaded and checked once."""
    if tls is None:
        return None
    material = tls.load()
    if own_name is not None and certificate_name(material.cert) != own_name:
        raise ConfigError(
            f"{tls.cert} names {certificate_name(material.cert)!r}, but this node is {own_name!r}"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca,
        private_key=material.key,
        certificate_chain=material.cert,
    )


def _open(address: str, credentials: grpc.ChannelCredentials | None, *, expected_name: str,
          own_name: str | None, max_message_bytes: int) -> PartyChannel:
    parse_host_port(address)
    validate_name(expected_name)
    if credentials is None:
        _LOG.warning("connecting to %s at %s WITHOUT TLS (dev only)", expected_name, address)
        inner = grpc.insecure_channel(address, options=channel_options(None, max_message_bytes))
        if own_name is not None:
            inner = grpc.intercept_channel(inner, _PartyHeader(validate_name(own_name)))
        return PartyChannel(inner, party=expected_name, address=address)
    options = channel_options(expected_name, max_message_bytes)
    inner = grpc.secure_channel(address, credentials, options=options)
    return PartyChannel(inner, party=expected_name, address=address)


class ChannelSet:
    """One channel per party, made on first use and reused until ``close`` (e.g. a study).

    Our TLS files are loaded once for the whole set, and every call to a party shares one
    connection: no TCP and TLS handshake per call. Use as a context manager.
    """

    def __init__(self, tls: TlsFiles | None, *, own_name: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._credentials = client_credentials(tls, own_name)
        self._own_name = own_name
        self._max_message_bytes = max_message_bytes
        self._channels: dict[tuple[str, str], PartyChannel] = {}

    def get(self, name: str, address: str) -> PartyChannel:
        """The channel to party ``name`` at ``address`` (opened on first use)."""
        key = (name, address)
        channel = self._channels.get(key)
        if channel is None:
            channel = _open(address, self._credentials, expected_name=name,
                            own_name=self._own_name, max_message_bytes=self._max_message_bytes)
            self._channels[key] = channel
        return channel

    def __len__(self) -> int:
        return len(self._channels)

    def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> ChannelSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_ready(
    channel: grpc.Channel, timeout: float, party: str, *, address: str | None = None
) -> None:
    """Block until the channel is connected; PartyError "unreachable" after ``timeout`` s."""
    address = address or getattr(channel, "address", "its address")
    ready = grpc.channel_ready_future(channel)
    try:
        ready.result(timeout=timeout)
    except grpc.FutureTimeoutError:
        ready.cancel()
        raise PartyError(
            party,
            f"unreachable at {address} (no connection within {timeout:g} s: not running, "
            "wrong address, blocked by a firewall, or a TLS handshake that failed)",
        ) from None


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """Call details with our metadata (the form gRPC's interceptor examples use)."""


class _PartyHeader(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``x-securecalc-party: <own name>`` to every call (insecure mode only)."""

    def __init__(self, own_name: str):
        self._header = (PARTY_HEADER, own_name)

    def _details(self, details: grpc.ClientCallDetails) -> _Details:
        metadata = [m for m in (details.metadata or ()) if m[0] != PARTY_HEADER]
        return _Details(
            details.method,
            details.timeout,
            [*metadata, self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


__all__ = ["PARTY_HEADER", "ChannelSet", "PartyChannel", "channel_options", "client_credentials",
           "create_channel", "create_pinned_channel", "wait_ready"]
