"""The exception <-> status table, exercised over a real (insecure, loopback) server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest

from securecalc.errors import (
    ConfigError,
    CryptoError,
    DataError,
    PartyError,
    PolicyError,
    ProtocolError,
    SecureCalcError,
    WhereError,
)
from securecalc.transport.channel import PartyChannel, create_channel
from securecalc.transport.errors import (
    DATA_WITHHELD,
    ERROR_KIND_KEY,
    STATUS_OF,
    raise_from_rpc_error,
    relayed,
    rpc_boundary,
    status_of,
)
from securecalc.transport.interface import CallerRefused
from securecalc.transport.server import create_server

SERVICE = "securecalc.test.Errors"
SECRET = "row 17 has value 42.5"

RAISED: dict[str, Exception] = {
    "config": ConfigError("min_cell_size must be >= 5", path="study.toml", field="min_cell"),
    "where": WhereError("unknown column 'agee'"),
    "data": DataError("cohort.csv: column age holds 'abc'"),
    "party": PartyError("hospital-b", "no answer within 30 s"),
    "protocol": ProtocolError(f"bad share length: {SECRET}"),
    "crypto": CryptoError("ciphertext authentication failed"),
    "base": SecureCalcError("something deliberate"),
    "bug": ZeroDivisionError(SECRET),
    "gone": grpc.RpcError(),  # what a request iterator raises once its caller went away
    "refused": CallerRefused("certificate names hospital-x, which is not a party of this job"),
}


class Raiser:
    @rpc_boundary
    def unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RAISED[request.decode()]

    @rpc_boundary
    def stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"one"
        yield b"two"
        raise RAISED[request.decode()]

    @rpc_boundary
    def aborts(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "no such job")
        return b""

    def register(self, server: grpc.Server) -> None:
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Stream": grpc.unary_stream_rpc_method_handler(self.stream),
            "Aborts": grpc.unary_unary_rpc_method_handler(self.aborts),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture(scope="module")
def channel() -> Iterator[PartyChannel]:
    server, port = create_server("127.0.0.1:0", tls=None, register=Raiser().register)
    ch = create_channel(
        f"127.0.0.1:{port}", tls=None, expected_name="hospital-a", own_name="coordinator"
    )
    try:
        yield ch
    finally:
        ch.close()
        server.stop(None)


def unary(channel: PartyChannel, kind: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(f"/{SERVICE}/Unary")(kind.encode(), timeout=5)
    return info.value


def reconstruct(channel: PartyChannel, err: grpc.RpcError) -> Exception:
    with pytest.raises(SecureCalcError) as info:
        raise_from_rpc_error(err, party=channel.party, address=channel.address, timeout=5)
    return info.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "kind, cls, code, text",
    [
        (
            "config",
            ConfigError,
            "FAILED_PRECONDITION",
            "study.toml, field 'min_cell': min_cell_size must be >= 5",
        ),
        ("where", WhereError, "INVALID_ARGUMENT", "unknown column 'agee'"),
        ("data", DataError, "FAILED_PRECONDITION",
         "its data do not fit this job (details are in this node's log)"),
        ("protocol", ProtocolError, "INVALID_ARGUMENT", "malformed message"),
        ("crypto", CryptoError, "UNAUTHENTICATED", "ciphertext authentication failed"),
        ("base", SecureCalcError, "UNKNOWN", "something deliberate"),
    ],
)
def test_each_kind_is_reconstructed(
    channel: PartyChannel, kind: str, cls: type, code: str, text: str
) -> None:
    err = unary(channel, kind)
    assert err.code() == getattr(grpc.StatusCode, code)
    exc = reconstruct(channel, err)
    assert type(exc) is cls
    assert str(exc) == f"hospital-a: {text}"


@pytest.mark.timeout(20)
def test_protocol_error_stays_opaque(channel: PartyChannel, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="securecalc.transport.errors"):
        err = unary(channel, "protocol")
    assert err.details() == "malformed message"
    assert SECRET not in str(reconstruct(channel, err))
    assert SECRET in caplog.text  # the operator of the node still sees it


@pytest.mark.timeout(20)
def test_data_error_stays_in_the_node_log(channel: PartyChannel,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """A DataError describes the serving node's own data: nothing of it leaves the node."""
    with caplog.at_level(logging.ERROR, logger="securecalc.transport.errors"):
        err = unary(channel, "data")
    assert err.details() == DATA_WITHHELD
    assert "abc" not in str(reconstruct(channel, err))
    assert "column age holds 'abc'" in caplog.text


@pytest.mark.timeout(20)
def test_reported_party_is_kept(channel: PartyChannel) -> None:
    err = unary(channel, "party")
    assert err.code() == grpc.StatusCode.ABORTED
    exc = reconstruct(channel, err)
    assert isinstance(exc, PartyError)
    assert exc.party == "hospital-b"
    assert str(exc) == "party 'hospital-b': no answer within 30 s (reported by hospital-a)"


@pytest.mark.timeout(20)
def test_unexpected_exception_is_opaque_internal(
    channel: PartyChannel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="securecalc.transport.errors"):
        err = unary(channel, "bug")
    assert err.code() == grpc.StatusCode.INTERNAL
    assert SECRET not in (err.details() or "")
    assert dict(err.trailing_metadata() or ()).get(ERROR_KIND_KEY) is None
    exc = reconstruct(channel, err)
    assert isinstance(exc, PartyError) and exc.party == "hospital-a"
    assert "internal error" in str(exc) and SECRET not in str(exc)
    record = next(r for r in caplog.records if r.exc_info)
    assert record.exc_info[0] is ZeroDivisionError  # type: ignore[index]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["party", "gone"])
def test_expected_failures_are_one_warning_line(channel: PartyChannel, kind: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A lost peer or a caller that went away is one WARNING line: no ERROR, no traceback."""
    with caplog.at_level(logging.INFO, logger="securecalc.transport.errors"):
        unary(channel, kind)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].exc_info is None


@pytest.mark.timeout(20)
def test_stream_fails_after_its_first_messages(channel: PartyChannel) -> None:
    responses = channel.unary_stream(f"/{SERVICE}/Stream")(b"data", timeout=5)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for message in responses:
            received.append(message)
    assert received == [b"one", b"two"]
    exc = reconstruct(channel, info.value)
    assert isinstance(exc, DataError) and str(exc) == f"hospital-a: {DATA_WITHHELD}"


@pytest.mark.timeout(20)
def test_own_abort_passes_through(channel: PartyChannel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(f"/{SERVICE}/Aborts")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "no such job"
    exc = reconstruct(channel, info.value)
    assert isinstance(exc, PartyError) and "NOT_FOUND: no such job" in str(exc)


class FakeError(grpc.RpcError):
    """What a failed call looks like to the client, without a server."""

    def __init__(self, code: grpc.StatusCode, details: str = ""):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return ()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "code, details, expected",
    [
        ("UNAVAILABLE", "", "party 'hospital-a': unreachable at 10.0.0.7:7001"),
        ("DEADLINE_EXCEEDED", "",
         "party 'hospital-a': stopped answering: no answer within 2.5 s from 10.0.0.7:7001"),
        # gRPC 1.85's details for what happens to a study's parties (measured on loopback)
        ("UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: ipv4:"
         "10.0.0.7:7001: Failed to connect to remote host: Connection refused",
         "party 'hospital-a': unreachable at 10.0.0.7:7001: connection refused"),
        ("UNAVAILABLE", "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:"
         "10.0.0.7:7001: Handshake read failed (Endpoint closing)",
         "party 'hospital-a': stopped answering at 10.0.0.7:7001: accepted the connection but "
         "never completed the TLS handshake (frozen"),
        ("UNAVAILABLE", "Stream removed (ping timeout)",
         "party 'hospital-a': stopped answering at 10.0.0.7:7001: no answer to keepalive"),
        ("UNAVAILABLE", "Stream removed (Socket closed)",
         "party 'hospital-a': lost at 10.0.0.7:7001: the connection broke during the call"),
        ("UNAVAILABLE", "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:"
         "10.0.0.7:7001: Socket closed",
         "party 'hospital-a': refused at 10.0.0.7:7001: closed the connection during the TLS "
         "handshake: it refused our certificate"),
        ("PERMISSION_DENIED", "not yours", "party 'hospital-a': refused: not yours"),
        ("UNAUTHENTICATED", "who?", "party 'hospital-a': refused: who?"),
        ("RESOURCE_EXHAUSTED", "too big", "party 'hospital-a': message exceeds the size limit"),
        ("UNIMPLEMENTED", "Method not found!", "call failed with UNIMPLEMENTED"),
    ],
)
def test_call_failures_become_party_errors(code: str, details: str, expected: str) -> None:
    err = FakeError(getattr(grpc.StatusCode, code), details)
    with pytest.raises(PartyError) as info:
        raise_from_rpc_error(err, party="hospital-a", address="10.0.0.7:7001", timeout=2.5)
    assert expected in str(info.value)
    assert info.value.party == "hospital-a"
    assert info.value.__cause__ is err


@pytest.mark.timeout(10)
def test_table_lookup_follows_inheritance() -> None:
    class CohortTooSmall(DataError):
        pass

    assert status_of(CohortTooSmall("n < 5"))[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert status_of(WhereError("x"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(ProtocolError("secret"))[1] == "malformed message"
    assert set(STATUS_OF) == {
        ConfigError,
        WhereError,
        DataError,
        PolicyError,
        PartyError,
        ProtocolError,
        CryptoError,
        SecureCalcError,
    }


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(k for k in RAISED if k != "gone"))
def test_in_process_calls_see_the_errors_grpc_callers_see(channel: PartyChannel,
                                                          kind: str) -> None:
    """``relayed`` (the in-memory transport) and the status table agree on every kind."""
    over_grpc = reconstruct(channel, unary(channel, kind))
    in_process = relayed(RAISED[kind], party=channel.party)
    assert type(in_process) is type(over_grpc)
    assert str(in_process) == str(over_grpc)
    assert getattr(in_process, "party", None) == getattr(over_grpc, "party", None)
