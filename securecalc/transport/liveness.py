"""Is a party still there? Health checks with a deadline, once or every second.

A frozen process keeps its TCP port open, so neither a connect nor a long call notices it;
an unanswered health check does. :func:`probe` checks one party once (connection, TLS
handshake and an answer within the timeout); :class:`Liveness` keeps checking a set of parties
while a long call runs and keeps the first failure, as the :class:`PartyError` that says what
most likely happened (see :mod:`securecalc.transport.errors`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from securecalc.errors import PartyError
from securecalc.transport.channel import PartyChannel
from securecalc.transport.errors import raise_from_rpc_error

#: seconds between two checks of one party (each check waits up to the party timeout)
INTERVAL = 1.0


def probe(channel: PartyChannel, timeout: float) -> None:
    """Return when ``channel``'s party answers a health check within ``timeout`` s; raise
    :class:`PartyError` (refused, unreachable or stopped answering) otherwise."""
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                  timeout=timeout)
    except grpc.RpcError as exc:
        raise_from_rpc_error(exc, party=channel.party, address=channel.address, timeout=timeout)


class Liveness:
    """Checks every channel each :data:`INTERVAL` s in the background; ``lost`` is the first
    failure (a party silent for ``timeout`` s is named within ``timeout + INTERVAL`` s)."""

    def __init__(self, channels: Mapping[str, PartyChannel], timeout: float):
        self._channels = dict(channels)
        self._timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.lost: PartyError | None = None

    def _watch(self, channel: PartyChannel) -> None:
        while not self._stop.is_set():
            try:
                probe(channel, self._timeout)
            except PartyError as exc:
                with self._lock:
                    if self.lost is None and not self._stop.is_set():
                        self.lost = exc
                return
            self._stop.wait(INTERVAL)

    def __enter__(self) -> Liveness:
        for name, channel in self._channels.items():
            threading.Thread(target=self._watch, args=(channel,), daemon=True,
                             name=f"liveness-{name}").start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()


__all__ = ["INTERVAL", "Liveness", "probe"]
