"""Running a server process until it is told to stop."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Protocol


class Server(Protocol):
    """A started server (a ``grpc.Server``): it stops within a grace period."""

    def stop(self, grace: float | None) -> Any: ...


def run_until_stopped(server: Server, *, role: str, name: str, host: str, port: int) -> None:
    """Announce the bound address on stdout, then serve until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"{role} {name} listening on {host}:{port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=2).wait(5)
    print(f"{role} {name} stopped", file=sys.stderr, flush=True)
