"""Real gRPC servers and channels on loopback with certificates from a throwaway CA."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import securecalc
from securecalc.errors import ConfigError, CryptoError, PartyError
from securecalc.pins import folder_pins
from securecalc.pki import PkiFiles, Role, init_pki, issue_certificate
from securecalc.transport.channel import PARTY_HEADER, create_channel, wait_ready
from securecalc.transport.chunks import join, split
from securecalc.transport.errors import raise_from_rpc_error, rpc_boundary
from securecalc.transport.identity import peer_name, require_peer
from securecalc.transport.server import MiB, create_server, set_serving
from securecalc.transport.tls import TlsFiles

SERVICE = "securecalc.test.Plumbing"
PARTIES = ["hospital-a", "hospital-b", "hospital-c"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return init_pki(tmp_path_factory.mktemp("pki"), hospitals=PARTIES,
                    coordinators=["coordinator"])


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """Another study's CA, issuing a certificate with the same party name."""
    return init_pki(tmp_path_factory.mktemp("foreign"), hospitals=["hospital-b"])


class Plumbing:
    """Test servicer: thin methods behind ``rpc_boundary`` and ``require_peer``."""

    def __init__(self, allowed: set[str], insecure: bool, pins: dict[str, str]):
        self.allowed = allowed
        self.insecure = insecure
        self.pins = pins
        self.release = threading.Event()

    @rpc_boundary
    def whoami(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return require_peer(context, self.allowed, role=Role.HOSPITAL,
                            insecure=self.insecure, pins=self.pins).encode()

    @rpc_boundary
    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        require_peer(context, self.allowed, role=Role.HOSPITAL, insecure=self.insecure,
                     pins=self.pins)
        return request

    @rpc_boundary
    def hang(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.release.wait(30)
        return b"late"

    @rpc_boundary
    def upload(self, chunks: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        require_peer(context, self.allowed, role=Role.HOSPITAL, insecure=self.insecure,
                     pins=self.pins)
        return str(len(join(chunks, max_bytes=64 * MiB))).encode()

    @rpc_boundary
    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in requests:
            yield str(peer_name(context, insecure=self.insecure)).encode()

    def register(self, server: grpc.Server) -> None:
        handlers = {
            "Whoami": grpc.unary_unary_rpc_method_handler(self.whoami),
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo),
            "Hang": grpc.unary_unary_rpc_method_handler(self.hang),
            "Upload": grpc.stream_unary_rpc_method_handler(self.upload),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@contextmanager
def serving(
    tls: TlsFiles | None, allowed: set[str] | None = None, **kwargs: Any
) -> Iterator[tuple[Plumbing, int]]:
    pins = folder_pins(tls.ca.parent) if tls is not None else {}
    servicer = Plumbing(set(PARTIES) if allowed is None else allowed, insecure=tls is None,
                        pins=pins)
    server, port = create_server("127.0.0.1:0", tls=tls, register=servicer.register, **kwargs)
    try:
        yield servicer, port
    finally:
        servicer.release.set()
        server.stop(None)


def call(
    channel: grpc.Channel,
    method: str,
    request: bytes = b"",
    *,
    party: str = "hospital-a",
    timeout: float = 5,
    metadata: list[tuple[str, str]] | None = None,
) -> bytes:
    """One unary call with a deadline, failures mapped as services will map them."""
    try:
        return channel.unary_unary(f"/{SERVICE}/{method}")(
            request, timeout=timeout, metadata=metadata
        )
    except grpc.RpcError as err:
        address = getattr(channel, "address", "?")
        raise_from_rpc_error(err, party=party, address=address, timeout=timeout)


def raw_channel(port: int, ca: Path, cert: Path | None, key: Path | None) -> grpc.Channel:
    """A channel built without our checks, to see what the *server* refuses."""
    credentials = grpc.ssl_channel_credentials(
        ca.read_bytes(),
        key.read_bytes() if key else None,
        cert.read_bytes() if cert else None,
    )
    options = [("grpc.ssl_target_name_override", "hospital-a")]
    channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)
    channel.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    return channel


# -- mutual TLS and identity -------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_mtls_call_names_the_client(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}",
            tls=pki.tls_files("hospital-b"),
            expected_name="hospital-a",
            own_name="hospital-b",
        ) as channel:
            wait_ready(channel, 5, "hospital-a")
            assert call(channel, "Whoami") == b"hospital-b"
            # With TLS the development header is ignored: it cannot impersonate.
            spoof = [(PARTY_HEADER, "hospital-c")]
            assert call(channel, "Whoami", metadata=spoof) == b"hospital-b"
            chat = channel.stream_stream(f"/{SERVICE}/Chat")
            assert list(chat(iter([b"1", b"2"]), timeout=5)) == [b"hospital-b"] * 2


@pytest.mark.timeout(20)
def test_health_serving_over_mtls(pki: PkiFiles) -> None:
    servicer = health.HealthServicer()
    with serving(
        pki.tls_files("hospital-a"), health_servicer=servicer, services=["securecalc.Node"]
    ) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            serving_ = health_pb2.HealthCheckResponse.SERVING
            check = health_pb2.HealthCheckRequest
            assert stub.Check(check(service=""), timeout=5).status == serving_
            assert stub.Check(check(service="securecalc.Node"), timeout=5).status == serving_
            set_serving(servicer, "securecalc.Node", False)
            status = stub.Check(check(service="securecalc.Node"), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.timeout(20)
def test_client_certificate_from_another_ca_refused(pki: PkiFiles, foreign: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        alien = foreign.parties["hospital-b"]
        channel = raw_channel(port, pki.ca_cert, alien.cert, alien.key)
        with pytest.raises(PartyError, match="refused at .*refused our certificate"):
            call(channel, "Whoami")
        channel.close()


@pytest.mark.timeout(20)
def test_expired_client_certificate_refused(pki: PkiFiles, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=60)
    old = issue_certificate(pki.ca_cert, pki.ca_key, "hospital-b", tmp_path, role=Role.HOSPITAL,
                            days=30, now=past)
    with serving(pki.tls_files("hospital-a")) as (_, port):
        channel = raw_channel(port, pki.ca_cert, old.cert, old.key)
        with pytest.raises(PartyError, match="refused at .*refused our certificate"):
            call(channel, "Whoami")
        channel.close()
        # Our own channel does not even try: the node's own certificate is checked first.
        with pytest.raises(CryptoError, match="expired on"):
            create_channel(
                f"127.0.0.1:{port}",
                tls=TlsFiles(pki.ca_cert, old.cert, old.key),
                expected_name="hospital-a",
            )


@pytest.mark.timeout(20)
def test_client_without_certificate_refused(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        channel = raw_channel(port, pki.ca_cert, None, None)
        with pytest.raises(PartyError, match="refused at .*refused our certificate"):
            call(channel, "Whoami")
        channel.close()


@pytest.mark.timeout(20)
def test_server_naming_another_party_refused_by_client(pki: PkiFiles) -> None:
    # hospital-c answers at the address where the client expects hospital-a.
    with serving(pki.tls_files("hospital-c")) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            with pytest.raises(PartyError, match="names another party") as info:
                call(channel, "Whoami")
            assert info.value.party == "hospital-a"


@pytest.mark.timeout(20)
def test_require_peer_refuses_a_name_not_in_the_job(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a"), allowed={"hospital-a", "hospital-c"}) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            message = "refused: certificate names hospital-b, which is not a party of this job"
            with pytest.raises(PartyError, match=message):
                call(channel, "Echo", b"x")


@pytest.mark.timeout(20)
def test_require_peer_refuses_another_role(pki: PkiFiles) -> None:
    """A coordinator certificate whose name is in the allowed set still is no hospital."""
    allowed = {"hospital-a", "coordinator"}
    with serving(pki.tls_files("hospital-a"), allowed=allowed) as (_, port):
        with create_channel(f"127.0.0.1:{port}", tls=pki.tls_files("coordinator"),
                            expected_name="hospital-a") as channel:
            message = ("the certificate of coordinator is a coordinator certificate; only a "
                       "hospital may make this call")
            with pytest.raises(PartyError, match=message):
                call(channel, "Echo", b"x")


def _roleless(pki: PkiFiles, name: str, folder: Path) -> tuple[Path, Path]:
    """A certificate of ``name`` from the study CA as issued before roles (no OU)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from securecalc.pki import load_ca

    ca_cert, ca_key = load_ca(pki.ca_cert, pki.ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.timeout(20)
def test_require_peer_refuses_a_certificate_without_role(pki: PkiFiles, tmp_path: Path) -> None:
    cert, key = _roleless(pki, "hospital-b", tmp_path)
    with serving(pki.tls_files("hospital-a")) as (_, port):
        channel = raw_channel(port, pki.ca_cert, cert, key)
        with pytest.raises(PartyError, match="states no role \\(it predates roles\\): the "
                                             "study CA must reissue it"):
            call(channel, "Echo", b"x")
        channel.close()


@pytest.mark.timeout(20)
def test_own_name_must_match_own_certificate(pki: PkiFiles) -> None:
    with pytest.raises(ConfigError, match="names 'hospital-b', but this node is 'hospital-a'"):
        create_channel(
            "127.0.0.1:1",
            tls=pki.tls_files("hospital-b"),
            expected_name="hospital-c",
            own_name="hospital-a",
        )


# -- insecure development mode ---------------------------------------------------------------


@pytest.mark.timeout(20)
def test_insecure_mode_carries_the_party_header() -> None:
    with serving(None) as (_, port):
        address = f"127.0.0.1:{port}"
        with create_channel(
            address, tls=None, expected_name="hospital-a", own_name="hospital-b"
        ) as channel:
            assert call(channel, "Whoami") == b"hospital-b"
            chat = channel.stream_stream(f"/{SERVICE}/Chat")
            assert list(chat(iter([b"1"]), timeout=5)) == [b"hospital-b"]
        with create_channel(address, tls=None, expected_name="hospital-a") as anonymous:
            with pytest.raises(PartyError, match="no x-securecalc-party header"):
                call(anonymous, "Whoami")


# -- sizes -----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_large_message_within_limit_and_beyond(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            six = os.urandom(6 * MiB)  # above gRPC's default 4 MiB, below our 8 MiB
            assert call(channel, "Echo", six) == six
            with pytest.raises(PartyError, match="exceeds the size limit.*in chunks"):
                call(channel, "Echo", bytes(9 * MiB))
            # Larger objects go as a stream of chunks.
            upload = channel.stream_unary(f"/{SERVICE}/Upload")
            assert upload(split(bytes(20 * MiB)), timeout=20) == str(20 * MiB).encode()


@pytest.mark.timeout(20)
def test_server_receive_limit_is_explicit(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a"), max_message_bytes=1 * MiB) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            assert len(call(channel, "Echo", bytes(MiB - 100))) == MiB - 100
            with pytest.raises(PartyError, match="exceeds the size limit"):
                call(channel, "Echo", bytes(2 * MiB))


# -- liveness --------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_hung_handler_cut_by_deadline(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            start = time.monotonic()
            with pytest.raises(PartyError, match="no answer within 0.5 s") as info:
                call(channel, "Hang", timeout=0.5)
            assert info.value.party == "hospital-a"
            assert time.monotonic() - start < 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(20)
def test_unreachable_address(pki: PkiFiles) -> None:
    address = f"127.0.0.1:{_free_port()}"
    with create_channel(
        address, tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
    ) as channel:
        start = time.monotonic()
        with pytest.raises(PartyError, match=f"unreachable at {address}: connection refused"):
            call(channel, "Whoami", timeout=10)
        assert time.monotonic() - start < 3
        with pytest.raises(PartyError, match=f"'hospital-a': unreachable at {address}"):
            wait_ready(channel, 0.5, "hospital-a")


_FROZEN_SERVER = """
import sys
from securecalc.transport.server import create_server
from securecalc.transport.tls import TlsFiles
server, port = create_server(
    "127.0.0.1:0", tls=TlsFiles.in_directory(sys.argv[1], "hospital-a"), register=lambda s: None
)
print(port, flush=True)
server.wait_for_termination()
"""


@pytest.mark.timeout(60)
def test_keepalive_detects_a_frozen_peer_without_deadline(pki: PkiFiles) -> None:
    """A peer that stops (SIGSTOP) is dropped by keepalive, long before a generous deadline."""
    env = {**os.environ, "PYTHONPATH": str(Path(securecalc.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _FROZEN_SERVER, str(pki.directory)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        with create_channel(
            f"127.0.0.1:{port}", tls=pki.tls_files("hospital-b"), expected_name="hospital-a"
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="")
            # Watch is a server stream that stays open: a long MPC wait looks the same.
            watch = stub.Watch(request, timeout=50)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            os.kill(proc.pid, signal.SIGSTOP)
            start = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                next(watch)
            elapsed = time.monotonic() - start
            with pytest.raises(PartyError, match="stopped answering at .*keepalive"):
                raise_from_rpc_error(
                    info.value, party="hospital-a", address=f"127.0.0.1:{port}", timeout=50
                )
            assert elapsed < 25, elapsed  # measured about 10 s: ping after 5 s + 5 s timeout
    finally:
        proc.kill()
        proc.wait(10)


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_port_in_use_refused(pki: PkiFiles) -> None:
    with serving(pki.tls_files("hospital-a")) as (_, port):
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            create_server(f"127.0.0.1:{port}", tls=None, register=lambda s: None)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "listen", ["7001", "localhost", "http://localhost:7001", "host:99999", "::1:7001", ""]
)
def test_bad_listen_address_refused(listen: str) -> None:
    register: Callable[[grpc.Server], None] = lambda s: None  # noqa: E731
    with pytest.raises(ConfigError, match="is not host:port"):
        create_server(listen, tls=None, register=register)


@pytest.mark.timeout(20)
def test_ipv6_bracket_address_accepted() -> None:
    try:
        server, port = create_server("[::1]:0", tls=None, register=lambda s: None)
    except ConfigError:
        pytest.skip("no IPv6 loopback here")
    server.stop(None)
    assert port > 0
