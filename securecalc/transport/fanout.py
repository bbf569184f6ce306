"""Calling every party at once, and failing as soon as any one of them fails."""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from securecalc.transport.channel import PartyChannel
from securecalc.transport.errors import raise_from_rpc_error
from securecalc.transport.interface import GRACE_SECONDS, StudyClockLike
from securecalc.transport.liveness import Liveness

_POLL = 0.1


def call_all(calls: Mapping[str, Callable[[float], grpc.Future]], *,
             addresses: Mapping[str, str], clock: StudyClockLike, at_most: float | None = None,
             liveness: Liveness | None = None) -> dict[str, Any]:
    """Start every call (each takes its timeout and returns a gRPC future) and wait for all.

    Each call's deadline is what is left of the study, at most ``at_most`` s. The first
    failure cancels the calls still running and is raised as the error of the party it came
    from (or the party that party reports as lost), as is a party that ``liveness`` finds
    silent or gone; nothing is returned partially. StudyTimeout when the study's deadline
    passes first.
    """
    done: queue.Queue[tuple[str, grpc.Future]] = queue.Queue()
    futures: dict[str, grpc.Future] = {}
    timeout = clock.remaining(at_most)
    results: dict[str, Any] = {}
    try:
        for name, start in calls.items():
            future = start(timeout)
            futures[name] = future
            future.add_done_callback(lambda f, n=name: done.put((n, f)))
        while len(results) < len(futures):
            if liveness is not None and liveness.lost is not None:
                raise liveness.lost
            waiting = ", ".join(sorted(set(futures) - set(results)))
            try:
                name, future = done.get(timeout=_POLL)
            except queue.Empty:
                if clock.left() < -GRACE_SECONDS:
                    raise clock.expired(waiting) from None
                continue
            try:
                results[name] = future.result()
            except grpc.RpcError as exc:
                if clock.over:
                    raise clock.expired(waiting) from exc
                raise_from_rpc_error(exc, party=name, address=addresses[name], timeout=timeout)
    finally:
        for future in futures.values():
            future.cancel()  # no-op for finished calls
    return results


def check_all(channels: Mapping[str, PartyChannel], clock: StudyClockLike) -> None:
    """Every party answers a health check (connection and TLS handshake included) within
    ``peer_timeout_seconds``: a party refused, unreachable or frozen is named before any job
    starts."""
    request = health_pb2.HealthCheckRequest()

    def check(channel: PartyChannel) -> Callable[[float], grpc.Future]:
        return lambda timeout: health_pb2_grpc.HealthStub(channel).Check.future(
            request, timeout=timeout)

    call_all({name: check(ch) for name, ch in channels.items()},
             addresses={name: ch.address for name, ch in channels.items()}, clock=clock,
             at_most=clock.peer_timeout)
