"""Calling every party at once, and failing as soon as any one of them fails."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from securecalc.errors import PartyError
from securecalc.transport.errors import raise_from_rpc_error


def call_all(calls: Mapping[str, Callable[[], grpc.Future]], *, addresses: Mapping[str, str],
             timeout: float) -> dict[str, Any]:
    """Start every call (each returns a gRPC future) and wait for all of them.

    The first failure cancels the calls still running and is raised as the error of the party
    it came from (or the party that party reports as lost); nothing is returned partially.
    """
    done: queue.Queue[tuple[str, grpc.Future]] = queue.Queue()
    futures: dict[str, grpc.Future] = {}
    for name, start in calls.items():
        future = start()
        futures[name] = future
        future.add_done_callback(lambda f, n=name: done.put((n, f)))
    results: dict[str, Any] = {}
    deadline = time.monotonic() + timeout + 5
    try:
        while len(results) < len(futures):
            try:
                name, future = done.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                waiting = sorted(set(futures) - set(results))
                raise PartyError(waiting[0], f"no answer within {timeout:g} s") from None
            try:
                results[name] = future.result()
            except grpc.RpcError as exc:
                raise_from_rpc_error(exc, party=name, address=addresses[name], timeout=timeout)
    finally:
        for future in futures.values():
            future.cancel()  # no-op for finished calls
    return results
