"""One gRPC server per node: mutual TLS, health service, keepalive, explicit message limits."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from securecalc.core.limits import GRPC_MESSAGE
from securecalc.errors import ConfigError
from securecalc.transport.admission import SERVER_THREADS, Admission
from securecalc.transport.devhooks import server_interceptors
from securecalc.transport.tls import TlsFiles

_LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
#: send and receive limit of every server and channel (the limits table)
DEFAULT_MAX_MESSAGE_BYTES = GRPC_MESSAGE.value

_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")


def parse_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 as ``[::1]:port``); raise ConfigError for anything else."""
    m = _HOST_PORT.fullmatch(address) if isinstance(address, str) else None
    if m is None or int(m["port"]) > 65535:
        raise ConfigError(
            f"address {address!r} is not host:port (e.g. '127.0.0.1:7001', '[::1]:7001', "
            "'node-a.example.org:7001')"
        )
    return m["host"], int(m["port"])


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel arguments of every securecalc server: limits, no port sharing, keepalive."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Port in use must fail; gRPC otherwise sets SO_REUSEPORT and two nodes share a port.
        ("grpc.so_reuseport", 0),
        # Clients ping every ~5 s, also between calls; never answer that with GOAWAY.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
        # The server probes its clients too, so a hung peer on a long stream is noticed.
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.http2.ping_timeout_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def create_server(
    listen: str,
    *,
    tls: TlsFiles | None,
    register: Callable[[grpc.Server], None],
    max_workers: int = SERVER_THREADS,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    health_servicer: health.HealthServicer | None = None,
    services: Iterable[str] = (),
    admission: Admission | None = None,
) -> tuple[grpc.Server, int]:
    """Build, bind and start a server; return it and the bound port (``listen`` may use 0).

    ``tls=None`` opens an insecure port and is meant only for an explicit ``--insecure``
    development flag. With TLS, clients must present a certificate from the same CA
    (``require_client_auth``); which party it names is checked per call (``identity``).
    ``register`` adds the servicers. The standard health service answers SERVING for the
    server as a whole and for each name in ``services``; pass your own ``health_servicer``
    to change per-service status later (see ``set_serving``). Stop with ``server.stop(grace)``.
    Every call passes ``admission`` first (its caller bound, a slot of its caller's, a deadline
    for its first message; :mod:`securecalc.transport.admission`, which every node and compute
    server has); further interceptors come only from installed development hooks
    (``transport.devhooks``; none in production).
    """
    host, port = parse_host_port(listen)
    if max_message_bytes < 1:
        raise ConfigError(f"max_message_bytes must be positive, got {max_message_bytes}")
    material = tls.load() if tls is not None else None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-server"),
        options=server_options(max_message_bytes),
        maximum_concurrent_rpcs=None,
        interceptors=[*([admission] if admission else []), *server_interceptors()],
    )
    register(server)
    health_servicer = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        set_serving(health_servicer, name, True)
    try:
        if material is None:
            _LOG.warning("listening on %s WITHOUT TLS (development only): callers claim their "
                         "names and roles cannot be proven", listen)
            bound = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(material.key, material.cert)],
                root_certificates=material.ca,
                require_client_auth=True,
            )
            bound = server.add_secure_port(listen, credentials)
    except RuntimeError:
        bound = 0
    if not bound:
        server.stop(None)
        raise ConfigError(
            f"cannot listen on {host}:{port}: the port is in use, the host is not an address "
            "of this machine, or the port needs privileges"
        )
    server.start()
    return server, bound


def set_serving(health_servicer: health.HealthServicer, service: str, serving: bool) -> None:
    """Set the health status of ``service`` ("" is the server as a whole)."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    health_servicer.set(service, status)


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MiB",
    "create_server",
    "parse_host_port",
    "server_options",
    "set_serving",
]
