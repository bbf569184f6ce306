"""One table between securecalc's exceptions and gRPC status codes, both directions.

Server side, ``@rpc_boundary`` turns what a servicer raises into a status: a SecureCalcError
keeps its message (ProtocolError excepted: "malformed message", so a probing peer learns
nothing; and DataError, which describes the serving node's own data: a fixed text, so no
count, value, row or line of those data leaves the node), anything else becomes an opaque
INTERNAL logged here with its traceback. The kind
of error (and, for PartyError, the party it names) travels in trailing metadata so that
``raise_from_rpc_error`` on the client re-raises the same kind; status codes alone remain
meaningful to other gRPC clients.

=================  ===================  ===========================================
server raises      status code          client re-raises
=================  ===================  ===========================================
WhereError         INVALID_ARGUMENT     WhereError("<party>: <message>")
ConfigError        FAILED_PRECONDITION  ConfigError("<party>: <message>")
DataError          FAILED_PRECONDITION  DataError("<party>: its data do not fit ...")
PolicyError        PERMISSION_DENIED    PolicyError("<party>: <message>")
CallerRefused      PERMISSION_DENIED    PartyError(party, "refused: <message>")
NotYet             FAILED_PRECONDITION  (the MPC sender tries again)
PartyError(p)      ABORTED              PartyError(p, "<message> (reported by <party>)")
ProtocolError      INVALID_ARGUMENT     ProtocolError("<party>: malformed message")
CryptoError        UNAUTHENTICATED      CryptoError("<party>: <message>")
SecureCalcError    UNKNOWN              SecureCalcError("<party>: <message>")
anything else      INTERNAL             PartyError(party, "internal error ...")
=================  ===================  ===========================================

Failures of the call itself map to PartyError(party, ...) saying what most likely happened:
"refused" (TLS or certificate; PERMISSION_DENIED/UNAUTHENTICATED), "unreachable at ADDRESS"
(connection refused, no route), "stopped answering" (a deadline passed, keepalive pings or
the TLS handshake went unanswered: a frozen or cut-off process), "lost at ADDRESS" (the
connection broke during the call: the process died or restarted), RESOURCE_EXHAUSTED ->
"message exceeds the size limit ...".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, ParamSpec, TypeVar, cast

import grpc

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
from securecalc.transport.interface import NOT_YET, CallerRefused, NotYet

_LOG = logging.getLogger(__name__)

ERROR_KIND_KEY = "x-securecalc-error"
ERROR_PARTY_KEY = "x-securecalc-error-party"
MALFORMED = "malformed message"
DATA_WITHHELD = "its data do not fit this job (details are in this node's log)"
INTERNAL = "internal error (details are in this node's log)"

STATUS_OF: dict[type[SecureCalcError], grpc.StatusCode] = {
    WhereError: grpc.StatusCode.INVALID_ARGUMENT,
    ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    DataError: grpc.StatusCode.FAILED_PRECONDITION,
    PolicyError: grpc.StatusCode.PERMISSION_DENIED,
    PartyError: grpc.StatusCode.ABORTED,
    ProtocolError: grpc.StatusCode.INVALID_ARGUMENT,
    CryptoError: grpc.StatusCode.UNAUTHENTICATED,
    SecureCalcError: grpc.StatusCode.UNKNOWN,
}
"""The one table. Lookup walks the exception's MRO, so subclasses find their nearest kind."""

_KINDS: dict[str, type[SecureCalcError]] = {cls.__name__: cls for cls in STATUS_OF}

P = ParamSpec("P")
R = TypeVar("R")


def status_of(exc: SecureCalcError) -> tuple[grpc.StatusCode, str, type[SecureCalcError]]:
    """Status code, client-visible message and table kind for a SecureCalcError."""
    kind = next(c for c in type(exc).__mro__ if c in STATUS_OF)
    message = (MALFORMED if isinstance(exc, ProtocolError)
               else DATA_WITHHELD if isinstance(exc, DataError) else str(exc))
    return STATUS_OF[kind], message, kind


def rpc_boundary(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a servicer method (unary or stream-returning) to map exceptions to statuses.

    The ServicerContext must be the last positional argument, as gRPC passes it.
    Aborts done by the method itself (``context.abort``) pass through unchanged.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        context: grpc.ServicerContext = args[-1]
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            _abort_for(context, exc, method)
        if isinstance(result, Iterator):
            return cast(R, _guarded(result, context, method))
        return result

    return wrapper


def _guarded(responses: Iterator[Any], context: grpc.ServicerContext, method: Any) -> Iterator[Any]:
    try:
        yield from responses
    except Exception as exc:
        _abort_for(context, exc, method)


def _abort_for(context: grpc.ServicerContext, exc: Exception, method: Any) -> NoReturn:
    """Abort with the status of ``exc``. Expected failures (a SecureCalcError, a caller that
    went away) are one line: WARNING (INFO for a peer's malformed input, which a prober could
    repeat at will); only unexpected ones are logged with their traceback, and only here."""
    name = getattr(method, "__qualname__", repr(method))
    if type(exc) is Exception and not exc.args and context.code() is not None:
        raise exc  # context.abort() already ran inside the method
    if not context.is_active() or isinstance(exc, grpc.RpcError):
        _LOG.warning("%s: the caller cancelled the call, its deadline passed or its "
                     "connection broke (%s: %s)", name, type(exc).__name__,
                     " ".join(str(exc).split()))  # one line, whatever the error's text
        context.abort(grpc.StatusCode.CANCELLED, "the call ended early")
    if isinstance(exc, CallerRefused):  # the caller's side names the callee: "refused: ..."
        _LOG.warning("refused %s: %s", context.peer(), exc)
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    if isinstance(exc, NotYet):  # the sender tries again
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, NOT_YET)
    if isinstance(exc, SecureCalcError):
        code, message, kind = status_of(exc)
        if isinstance(exc, ProtocolError):
            _LOG.info("%s: malformed input from %s: %s", name, context.peer(), exc)
        elif isinstance(exc, DataError):
            _LOG.error("%s: DataError (withheld from the caller): %s", name, exc)
        else:
            _LOG.warning("%s: %s: %s", name, kind.__name__, exc)
        metadata: list[tuple[str, str]] = [(ERROR_KIND_KEY, kind.__name__)]
        if isinstance(exc, PartyError) and _header_safe(exc.party):
            metadata.append((ERROR_PARTY_KEY, exc.party))
        context.set_trailing_metadata(metadata)
        context.abort(code, message)
    _LOG.error("%s failed unexpectedly", name, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, INTERNAL)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def raise_from_rpc_error(
    err: grpc.RpcError, *, party: str, address: str, timeout: float | None
) -> NoReturn:
    """Re-raise a failed call to ``party`` as the matching SecureCalcError (see module doc)."""
    code = _call(err, "code")
    details = _call(err, "details") or ""
    trailing = dict(_call(err, "trailing_metadata") or ())
    kind = _KINDS.get(trailing.get(ERROR_KIND_KEY, ""))
    if kind is PartyError:
        reported = trailing.get(ERROR_PARTY_KEY) or party
        inner = details.removeprefix(f"party {reported!r}: ")
        suffix = "" if reported == party else f" (reported by {party})"
        raise PartyError(reported, f"{inner}{suffix}") from err
    if kind is not None:
        raise kind(f"{party}: {details}") from err
    raise PartyError(party, _describe(code, details, address, timeout)) from err


def relayed(exc: BaseException, *, party: str) -> SecureCalcError:
    """What the caller of ``party`` sees when ``party`` raises ``exc``: the error a gRPC call
    would re-raise (:func:`raise_from_rpc_error` of :func:`rpc_boundary`'s status), for
    transports that call a role directly (:mod:`securecalc.transport.memory`)."""
    if isinstance(exc, CallerRefused):
        return PartyError(party, f"refused: {exc}")
    if not isinstance(exc, SecureCalcError):
        _LOG.error("%s failed unexpectedly", party, exc_info=exc)
        return PartyError(party, INTERNAL)
    _code, message, kind = status_of(exc)
    if isinstance(exc, PartyError):
        reported = exc.party if _header_safe(exc.party) else party
        inner = message.removeprefix(f"party {reported!r}: ")
        suffix = "" if reported == party else f" (reported by {party})"
        return PartyError(reported, f"{inner}{suffix}")
    return kind(f"{party}: {message}")


def _describe(
    code: grpc.StatusCode | None, details: str, address: str, timeout: float | None
) -> str:
    if code == grpc.StatusCode.UNAVAILABLE:
        return _unavailable(details, address)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f"within {timeout:g} s" if timeout is not None else "before the deadline"
        return (f"stopped answering: no answer {within} from {address} (frozen, overloaded "
                "or cut off)")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return f"refused: {details}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"message exceeds the size limit ({details}); send large objects in chunks"
    if code == grpc.StatusCode.INTERNAL and details == INTERNAL:
        return INTERNAL
    if code == grpc.StatusCode.CANCELLED:
        return f"call cancelled ({details})"
    name = code.name if code is not None else "no status"
    return f"call failed with {name}: {details}"


_UNAVAILABLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    # (any of these in gRPC's details, what most likely happened, the cause in words)
    (("ping timeout", "keepalive"), "stopped answering",
     "no answer to keepalive pings (frozen, crashed or cut off)"),
    (("Hostname Verification", "No match found for server name"), "refused",
     "the certificate presented there names another party"),
    (("Connection refused",), "unreachable",
     "connection refused: nothing listens there (not running, or moved)"),
    (("No route to host", "Network is unreachable"), "unreachable", "no route to the host"),
    (("DNS resolution failed",), "unreachable", "the host name does not resolve"),
    (("Handshake read failed", "Endpoint closing", "handshake timed out"), "stopped answering",
     "accepted the connection but never completed the TLS handshake (frozen or overloaded)"),
    (("Stream removed", "Connection reset", "Broken pipe"), "lost",
     "the connection broke during the call (the process died, restarted or was cut off)"),
    (("Socket closed",), "refused",
     "closed the connection during the TLS handshake: it refused our certificate (another "
     "CA, expired, or not a party it accepts)"),
)


def _unavailable(details: str, address: str) -> str:
    """What most likely happened, from gRPC's UNAVAILABLE details (kept for the log)."""
    for needles, what, cause in _UNAVAILABLE:
        if any(n in details for n in needles):
            return f"{what} at {address}: {cause} ({details})"
    return f"unreachable at {address} ({details})" if details else f"unreachable at {address}"


def _call(err: grpc.RpcError, attr: str) -> Any:
    fn = getattr(err, attr, None)
    return fn() if callable(fn) else None


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


__all__ = [
    "DATA_WITHHELD",
    "ERROR_KIND_KEY",
    "ERROR_PARTY_KEY",
    "STATUS_OF",
    "raise_from_rpc_error",
    "relayed",
    "rpc_boundary",
    "status_of",
]
