"""Who may hold a server thread, and for how long: every call, before any handler runs.

A gRPC Python server gives each call a thread of a fixed pool, and a call whose request never
comes holds its thread while it waits. So every call, before anything is read:

- is bound to its caller (name and role from the certificate, :func:`identity.caller_of`;
  PERMISSION_DENIED otherwise);
- takes one of its caller's :data:`~securecalc.core.limits.CALLS_PER_CALLER` slots
  (RESOURCE_EXHAUSTED, naming the limit, when they are all in use), so one party holds at most
  a quarter of the pool's :data:`SERVER_THREADS` threads;
- must deliver its first message within :data:`FIRST_MESSAGE_SECONDS`, or it is cancelled.
  Unary requests are read here too (their handlers are served as one-message streams), so no
  handler thread ever waits for a request body without this deadline. MPC ``Exchange``
  streams are exempt: a peer sends its first frame when its job has one, and the servicer
  binds the stream to a running job of that peer before it reads anything.

The servicers then check the caller may make the call (its role, a coordinator or site of
this node) before they read or wait, so a stalled stream of the wrong party ends at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from securecalc.core.limits import CALLS_PER_CALLER

_LOG = logging.getLogger(__name__)

#: threads of every node's and the compute node's server
SERVER_THREADS = 4 * CALLS_PER_CALLER.value
#: seconds a call may take to send its first message (a request, a job's first chunk)
FIRST_MESSAGE_SECONDS = 30.0
#: client-streaming methods whose first message may come late (bound to a running job)
LATE_FIRST_MESSAGE = ("/securecalc.v1.PartyNode/Exchange",)


class CallerSlots:
    """At most ``per_caller`` calls in progress per caller name."""

    def __init__(self, per_caller: int):
        self.per_caller = per_caller
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> bool:
        with self._lock:
            held = self._held.get(name, 0)
            if held >= self.per_caller:
                return False
            self._held[name] = held + 1
            return True

    def give(self, name: str) -> None:
        with self._lock:
            left = self._held.get(name, 0) - 1
            if left > 0:
                self._held[name] = left
            else:
                self._held.pop(name, None)


class Watchdog:
    """One thread that runs callbacks (cancelling calls) at their deadlines."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` in ``seconds`` unless the returned disarm function runs first."""
        ident = next(self._ids)
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + seconds, ident, callback))
            self._armed.add(ident)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="first-message-watchdog",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()

        def disarm() -> None:
            with self._changed:
                self._armed.discard(ident)
        return disarm

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due
                                       else None)
                _, ident, callback = heapq.heappop(self._due)
                if ident not in self._armed:
                    continue
                self._armed.discard(ident)
            try:
                callback()
            except Exception:  # noqa: BLE001 - a callback's failure must not stop the others
                _LOG.exception("watchdog callback failed")


class Admission(grpc.ServerInterceptor):
    """The interceptor of every securecalc server (see the module's docstring)."""

    def __init__(self, identify: Callable[[grpc.ServicerContext], str], *,
                 per_caller: int = CALLS_PER_CALLER.value,
                 first_message_seconds: float = FIRST_MESSAGE_SECONDS):
        """``identify``: the caller's name from its certificate, aborting the call when it
        has no usable name or role (:func:`identity.caller_of`)."""
        self._identify = identify
        self.slots = CallerSlots(per_caller)
        self.first_message_seconds = first_message_seconds
        self.watchdog = Watchdog()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = str(details.method)
        late = method in LATE_FIRST_MESSAGE
        serialize = {"request_deserializer": handler.request_deserializer,
                     "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), **serialize)
        if handler.unary_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._unary(handler.unary_stream, method), **serialize)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._streaming(handler.stream_unary, method, late), **serialize)
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method, late), **serialize)

    def _unary(self, behaviour: Callable[[Any, grpc.ServicerContext], Any],
               method: str) -> Callable[[Iterator[Any], grpc.ServicerContext], Any]:
        def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with self._admitted(context, method) as first_message:
                request = first_message(requests)
                if request is None:
                    context.abort(grpc.StatusCode.CANCELLED, "no request in time")
                return behaviour(request, context)
        return serve

    def _streaming(self, behaviour: Callable[[Iterator[Any], grpc.ServicerContext], Any],
                   method: str, late: bool
                   ) -> Callable[[Iterator[Any], grpc.ServicerContext], Any]:
        def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with self._admitted(context, method, watch=not late) as first_message:
                return behaviour(_Watched(requests, first_message), context)
        return serve

    def _admitted(self, context: grpc.ServicerContext, method: str,
                  watch: bool = True) -> _Admitted:
        name = self._identify(context)  # aborts: no name, no role
        if not self.slots.take(name):
            _LOG.warning("refused %s from %s: %d calls in progress", method, name,
                         self.slots.per_caller)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{name} already has {self.slots.per_caller} calls in progress "
                          "here; the limit is "
                          f"{self.slots.per_caller} (calls per caller, limits table in the "
                          "README)")
        return _Admitted(self, context, method, name, watch)


class _Admitted:
    """One admitted call: its slot, and its first-message deadline while it is armed."""

    def __init__(self, admission: Admission, context: grpc.ServicerContext, method: str,
                 name: str, watch: bool):
        self.admission, self.context, self.method, self.name = admission, context, method, name
        self.fired = False
        self._disarm: Callable[[], None] = lambda: None
        if watch:
            self._disarm = admission.watchdog.after(admission.first_message_seconds,
                                                    self._expire)

    def _expire(self) -> None:
        self.fired = True
        _LOG.warning("%s from %s: no first message within %g s; the call is cancelled",
                     self.method, self.name, self.admission.first_message_seconds)
        self.context.cancel()

    def first(self, requests: Iterator[Any]) -> Any:
        """The first request (None when the call ended first: cancelled by the watchdog or
        by its caller, or closed without a request); disarms the deadline."""
        try:
            return next(requests, None)
        except grpc.RpcError:
            return None
        finally:
            self._disarm()

    def __enter__(self) -> Callable[[Iterator[Any]], Any]:
        return self.first

    def __exit__(self, *exc: object) -> None:
        self._disarm()
        self.admission.slots.give(self.name)


class _Watched:
    """A request stream whose first message is read under the call's deadline."""

    def __init__(self, requests: Iterator[Any], first: Callable[[Iterator[Any]], Any]):
        self._requests = requests
        self._first: Callable[[Iterator[Any]], Any] | None = first

    def __iter__(self) -> _Watched:
        return self

    def __next__(self) -> Any:
        if self._first is not None:
            first, self._first = self._first, None
            request = first(self._requests)
            if request is None:
                raise StopIteration
            return request
        return next(self._requests)
