"""Development only: injected one-way network latency on every call a server answers.

Set ``SECURECALC_DEV_LATENCY_MS`` in a node's (or compute node's) environment and its server
delays each request message and each response message of every call by that many ms, as a
link with that one-way latency would. Nothing is injected unless the variable is set, and a
loud warning is logged when it is. The node processes pick this up through securecalc's
development hooks (``securecalc.transport.devhooks``): this package registers :data:`HOOKS`
under the entry-point group ``securecalc.devhooks``, so the variable does nothing where this
package is not installed.

Model:

* a unary call costs 2 x latency more (request there, reply back), also when it fails;
* a stream is a pipe: each message is handed on one latency after it was sent, but messages
  do not wait for each other, so k chunks cost one latency per direction plus their own
  pace, not k latencies. A pump thread per streamed direction stamps each message when it is
  produced (received from the client, or yielded by the handler) and hands it on when due;
* not modelled: bandwidth (loopback speed), connection and TLS set-up round trips (about two
  round trips per new connection on a real link), keepalive pings;
* the MPC ``Exchange`` stream is left alone: its sender delays every frame by the same
  latency (the frame-delay hook, read by ``securecalc/node/mpc_session.py``), so frames are
  delayed exactly once.

Why the server side and not a client interceptor: sleeping in a client interceptor would
block the caller when it *starts* a call (the coordinator starts one call per site with
``.future()`` in a loop, so 50 sites would pay 50 latencies in sequence), and a
non-blocking client version would have to re-implement ``grpc.Future``. On the server each
call already has its own thread, every caller is covered (coordinator, nodes) and only the
processes that serve, started with the variable, need it. The cost: a delayed call holds
a server worker thread for its latency (a server with fewer workers than concurrent
callers, such as the compute node with 32 for 50 sites, then queues some calls).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import grpc

_LOG = logging.getLogger(__name__)

#: development only: one-way latency in ms (servers and the MPC frame relay)
LATENCY_ENV = "SECURECALC_DEV_LATENCY_MS"

#: the MPC frame stream delays its own frames (node/mpc_session.py): never delayed here
EXCHANGE_METHOD = "/securecalc.v1.PartyNode/Exchange"

T = TypeVar("T")
_END = object()


def latency_from_env(environ: Mapping[str, str] | None = None) -> float:
    """Seconds of injected one-way latency (0 when the variable is unset, 0, or invalid)."""
    raw = (os.environ if environ is None else environ).get(LATENCY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        ms = float(raw)
    except ValueError:
        ms = float("nan")
    if not ms >= 0 or ms == float("inf"):
        _LOG.warning("%s=%r is not a number of milliseconds: no latency injected",
                     LATENCY_ENV, raw)
        return 0.0
    return ms / 1000.0


def latency_interceptors(environ: Mapping[str, str] | None = None) -> list[grpc.ServerInterceptor]:
    """The interceptors a server needs: one :class:`LatencyInterceptor` iff the variable is
    set to a positive number of ms, none otherwise (read once, when the server is made)."""
    seconds = latency_from_env(environ)
    if seconds <= 0:
        return []
    _LOG.warning(
        "DEVELOPMENT ONLY: %s=%g: every call to this server is delayed by %g ms each way "
        "(emulated WAN latency). Never set this in production.",
        LATENCY_ENV, seconds * 1000, seconds * 1000)
    return [LatencyInterceptor(seconds)]


class Delayed(Generic[T]):
    """Iterate ``source``, handing each item on ``seconds`` after it was produced (pipelined).

    A daemon thread drains ``source`` eagerly (no flow control: a dev option) and stamps each
    item with its due time; the end of ``source`` and an exception it raises are handed on
    when due too. ``stop()`` makes the pump stop pulling after the item it is waiting for.
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, source: Iterator[T], seconds: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 start: bool = True):
        self._source, self._seconds = source, seconds
        self._clock, self._sleep = clock, sleep
        self._queue: queue.SimpleQueue[tuple[float, Any, BaseException | None]] = \
            queue.SimpleQueue()
        self._stopped = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self.pump, daemon=True, name="dev-latency")
        if start:
            self._thread.start()

    def pump(self) -> None:
        """Move every item of the source to the queue with its due time (the thread's body)."""
        error: BaseException | None = None
        try:
            for item in self._source:
                self._queue.put((self._clock() + self._seconds, item, None))
                if self._stopped.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed on to the consumer
            error = exc
        self._queue.put((self._clock() + self._seconds, _END, error))

    def stop(self) -> None:
        self._stopped.set()

    def __iter__(self) -> Delayed[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        due, item, error = self._queue.get()
        wait = due - self._clock()
        if wait > 0:
            self._sleep(wait)
        if item is _END:
            self._finished = True
            if error is not None:
                raise error
            raise StopIteration
        return item  # type: ignore[no-any-return]


class LatencyInterceptor(grpc.ServerInterceptor):
    """Delays requests and responses of every method but the exempt ones by ``seconds``."""

    def __init__(self, seconds: float, exempt: frozenset[str] = frozenset({EXCHANGE_METHOD})):
        self.seconds = seconds
        self.exempt = exempt

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method in self.exempt:
            return handler
        return delayed_handler(handler, self.seconds)


def delayed_handler(handler: grpc.RpcMethodHandler, seconds: float) -> grpc.RpcMethodHandler:
    """``handler`` with its requests arriving and its responses leaving ``seconds`` late."""
    behavior = (handler.unary_unary or handler.unary_stream or handler.stream_unary
                or handler.stream_stream)

    def request_of(request: Any, context: grpc.ServicerContext) -> Any:
        if not handler.request_streaming:
            time.sleep(seconds)
            return request
        delayed = Delayed(request, seconds)
        context.add_callback(delayed.stop)
        return delayed

    def unary_response(request: Any, context: grpc.ServicerContext) -> Any:
        request = request_of(request, context)
        try:
            return behavior(request, context)
        finally:  # the reply, or the error status, travels back
            time.sleep(seconds)

    def stream_response(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        delayed = Delayed(iter(behavior(request_of(request, context), context)), seconds)
        context.add_callback(delayed.stop)
        return delayed

    wrapped = stream_response if handler.response_streaming else unary_response
    make = {(False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler}[
        (handler.request_streaming, handler.response_streaming)]
    return make(wrapped, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


class LatencyHooks:
    """securecalc's development hooks (:class:`securecalc.transport.devhooks.DevHooks`) for
    the latency in this process's ``SECURECALC_DEV_LATENCY_MS``."""

    def server_interceptors(self) -> list[grpc.ServerInterceptor]:
        return latency_interceptors()

    def frame_delay(self) -> float:
        return latency_from_env()


#: what the entry point ``securecalc.devhooks`` names
HOOKS = LatencyHooks()

__all__ = ["EXCHANGE_METHOD", "HOOKS", "LATENCY_ENV", "Delayed", "LatencyHooks",
           "LatencyInterceptor", "delayed_handler", "latency_from_env", "latency_interceptors"]
