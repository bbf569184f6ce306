"""Client channel options and the per-study channel set."""

from __future__ import annotations

import socket

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from securecalc.pki import init_pki
from securecalc.transport.channel import ChannelSet, channel_options, create_channel
from securecalc.transport.server import create_server

NO_PROXY = ("grpc.enable_http_proxy", 0)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_every_channel_refuses_http_proxies() -> None:
    assert NO_PROXY in channel_options(None)
    assert NO_PROXY in channel_options("hospital-a")


@pytest.mark.timeout(30)
def test_a_proxy_in_the_environment_is_ignored(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path) -> None:  # type: ignore[no-untyped-def]
    """gRPC would send the call to this (dead) proxy without ``grpc.enable_http_proxy=0``."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY", "no_grpc_proxy"):
        monkeypatch.delenv(name, raising=False)
    pki = init_pki(tmp_path / "pki", hospitals=["hospital-a"], coordinators=["coordinator"])
    server, port = create_server("127.0.0.1:0", tls=pki.tls_files("hospital-a"),
                                 register=lambda s: None)
    try:
        with create_channel(f"127.0.0.1:{port}", tls=pki.tls_files("coordinator"),
                            expected_name="hospital-a") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None)


@pytest.mark.timeout(30)
def test_channel_set_reuses_one_channel_per_party(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pki = init_pki(tmp_path / "pki", hospitals=["hospital-a", "hospital-b"],
                   coordinators=["coordinator"])
    servers = [create_server("127.0.0.1:0", tls=pki.tls_files(name),
                             register=lambda s: None) for name in ("hospital-a", "hospital-b")]
    addresses = {name: f"127.0.0.1:{port}"
                 for name, (_, port) in zip(("hospital-a", "hospital-b"), servers, strict=True)}
    try:
        with ChannelSet(pki.tls_files("coordinator")) as channels:
            for _ in range(3):
                for name, address in addresses.items():
                    stub = health_pb2_grpc.HealthStub(channels.get(name, address))
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert len(channels) == 2
            a = channels.get("hospital-a", addresses["hospital-a"])
            assert a is channels.get("hospital-a", addresses["hospital-a"])
            assert a.party == "hospital-a"
        assert len(channels) == 0
        with pytest.raises(ValueError):  # closed with the set
            health_pb2_grpc.HealthStub(a).Check(health_pb2.HealthCheckRequest(), timeout=10)
    finally:
        for server, _ in servers:
            server.stop(None)
