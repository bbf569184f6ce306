"""Injected development latency (SECURECALC_DEV_LATENCY_MS, in the development package
securecalc_bench): installed iff set, reaching servers and the MPC frame relay through
securecalc's development hooks, honoured on every kind of call through a real server, never on
the MPC frame stream. Timings are only checked as lower bounds (a delayed call cannot be
faster than its latency)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from securecalc.transport import devhooks
from securecalc.transport.channel import create_channel
from securecalc.transport.proto import node_pb2
from securecalc.transport.server import create_server
from securecalc_bench.latency import (
    EXCHANGE_METHOD,
    HOOKS,
    LATENCY_ENV,
    Delayed,
    LatencyInterceptor,
    latency_from_env,
    latency_interceptors,
)

SERVICE = "securecalc.test.Delays"
LATENCY_MS = 150


class Delays:
    """One method of each kind, on raw bytes."""

    @staticmethod
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    @staticmethod
    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused on purpose")
        raise AssertionError("unreachable")

    @staticmethod
    def count(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for i in range(int(request)):
            yield str(i).encode()

    @staticmethod
    def upload(chunks: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return str(sum(len(c) for c in chunks)).encode()

    @staticmethod
    def chat(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for r in requests:
            yield r.upper()

    def register(self, server: grpc.Server) -> None:
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "Count": grpc.unary_stream_rpc_method_handler(self.count),
            "Upload": grpc.stream_unary_rpc_method_handler(self.upload),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@contextmanager
def delays_server() -> Iterator[grpc.Channel]:
    server, port = create_server("127.0.0.1:0", tls=None, register=Delays().register)
    try:
        with create_channel(f"127.0.0.1:{port}", tls=None, expected_name="hospital-a") as ch:
            yield ch
    finally:
        server.stop(None)


def test_the_hooks_are_registered_and_give_the_mpc_relay_the_variable(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HOOKS in devhooks.installed()
    monkeypatch.setenv(LATENCY_ENV, "40")
    assert devhooks.outgoing_frame_delay() == pytest.approx(0.040)
    monkeypatch.delenv(LATENCY_ENV)
    assert devhooks.outgoing_frame_delay() == 0.0
    assert devhooks.server_interceptors() == []


def test_the_frame_stream_is_the_one_left_alone() -> None:
    exchange = node_pb2.DESCRIPTOR.services_by_name["PartyNode"].methods_by_name["Exchange"]
    service, method = exchange.full_name.rsplit(".", 1)
    assert EXCHANGE_METHOD == f"/{service}/{method}"


def test_interceptor_installed_iff_the_variable_is_set(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="securecalc_bench.latency"):
        assert latency_interceptors({}) == []
        assert latency_interceptors({LATENCY_ENV: "0"}) == []
        assert latency_interceptors({LATENCY_ENV: ""}) == []
        assert not [r for r in caplog.records if "DEVELOPMENT ONLY" in r.getMessage()]
        assert latency_interceptors({LATENCY_ENV: "fast"}) == []
        assert latency_interceptors({LATENCY_ENV: "-5"}) == []
        assert latency_interceptors({LATENCY_ENV: "nan"}) == []
        (interceptor,) = latency_interceptors({LATENCY_ENV: "25"})
    assert isinstance(interceptor, LatencyInterceptor)
    assert interceptor.seconds == pytest.approx(0.025)
    loud = [r for r in caplog.records if "DEVELOPMENT ONLY" in r.getMessage()]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING
    assert latency_from_env({LATENCY_ENV: "fast"}) == 0.0


def test_the_mpc_frame_stream_is_left_alone() -> None:
    """Exchange frames are delayed by their sender already; the server must not add more."""
    handler = grpc.stream_unary_rpc_method_handler(Delays.upload)

    class Details(grpc.HandlerCallDetails):
        def __init__(self, method: str):
            self.method, self.invocation_metadata = method, ()

    interceptor = LatencyInterceptor(0.05)
    assert interceptor.intercept_service(lambda d: handler, Details(EXCHANGE_METHOD)) is handler
    other = interceptor.intercept_service(lambda d: handler, Details("/securecalc.v1.PartyNode/"
                                                                     "RunCkks"))
    assert other is not handler and other.request_streaming and not other.response_streaming
    assert interceptor.intercept_service(lambda d: None, Details("/x/Unknown")) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_stream_pays_the_latency_once_not_per_message() -> None:
    """Eight messages produced at once arrive one latency later, together (a pipe)."""
    clock = FakeClock()
    delayed = Delayed(iter(range(8)), 0.05, clock=clock, sleep=clock.sleep, start=False)
    delayed.pump()
    arrivals = []
    for item in delayed:
        arrivals.append((item, clock.now))
    assert [a[0] for a in arrivals] == list(range(8))
    assert all(t == pytest.approx(0.05) for _, t in arrivals)


def test_a_stream_error_arrives_after_the_messages_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken source")

    clock = FakeClock()
    delayed = Delayed(source(), 0.05, clock=clock, sleep=clock.sleep, start=False)
    delayed.pump()
    assert next(delayed) == 1 and next(delayed) == 2
    with pytest.raises(ValueError, match="broken source"):
        next(delayed)
    with pytest.raises(StopIteration):
        next(delayed)


@pytest.mark.timeout(30)
def test_calls_through_a_real_server_are_delayed_each_way(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(LATENCY_ENV, str(LATENCY_MS))
    two_ways = 2 * LATENCY_MS / 1000
    with caplog.at_level(logging.WARNING), delays_server() as channel:
        assert any("DEVELOPMENT ONLY" in r.getMessage() for r in caplog.records)

        started = time.monotonic()
        assert channel.unary_unary(f"/{SERVICE}/Echo")(b"ping", timeout=10) == b"ping"
        assert time.monotonic() - started >= two_ways

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/{SERVICE}/Fail")(b"", timeout=10)
        assert time.monotonic() - started >= two_ways
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == "refused on purpose"

        started = time.monotonic()
        assert list(channel.unary_stream(f"/{SERVICE}/Count")(b"5", timeout=10)) == \
            [b"0", b"1", b"2", b"3", b"4"]
        assert time.monotonic() - started >= two_ways

        started = time.monotonic()
        chunks = [bytes(1000)] * 8
        assert channel.stream_unary(f"/{SERVICE}/Upload")(iter(chunks), timeout=10) == b"8000"
        assert time.monotonic() - started >= two_ways

        started = time.monotonic()
        replies = channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"a", b"b"]), timeout=10)
        assert list(replies) == [b"A", b"B"]
        assert time.monotonic() - started >= two_ways


@pytest.mark.timeout(30)
def test_without_the_variable_no_interceptor_and_no_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(LATENCY_ENV, raising=False)
    with caplog.at_level(logging.WARNING), delays_server() as channel:
        assert channel.unary_unary(f"/{SERVICE}/Echo")(b"ping", timeout=10) == b"ping"
    assert not any("DEVELOPMENT ONLY" in r.getMessage() for r in caplog.records)
