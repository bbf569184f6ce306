"""Starting securecalc servers as separate processes and stopping them reliably."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from securecalc.errors import SecureCalcError

_LISTENING = re.compile(r"listening on (?P<address>\S+)")


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[str]
    address: str
    log_path: Path

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM to its process group: it and its MPC workers)."""
        self._signal(signal.SIGTERM)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server, killing it when it has not stopped after ``grace`` seconds."""
        self.terminate()
        self.wait_or_kill(grace)

    def wait_or_kill(self, grace: float = 5.0) -> None:
        """Wait up to ``grace`` seconds for the process to end, then kill it."""
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.process.wait(5)

    def _signal(self, signum: int) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass


def start_server(name: str, args: Sequence[str], *, log_dir: Path, timeout: float = 60.0,
                 env: Mapping[str, str] | None = None) -> ServerProcess:
    """Run ``python -m securecalc ARGS`` and wait for its "listening on HOST:PORT" line."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "securecalc", *args], stdout=subprocess.PIPE,
                               stderr=log, text=True, env=env, start_new_session=True)
    log.close()
    found: list[str] = []

    def read_first_lines() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _LISTENING.search(line)
            if match:
                found.append(match["address"])
                break
        process.stdout.close()

    reader = threading.Thread(target=read_first_lines, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found and process.poll() is None and time.monotonic() < deadline:
        reader.join(0.05)
    if not found:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        tail = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
        raise SecureCalcError(f"{name} did not start: {tail[0]} (log: {log_path})")
    return ServerProcess(name, process, found[0], log_path)


class ServerGroup:
    """Servers started together and always stopped together, also on errors."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: dict[str, ServerProcess] = {}

    def start(self, name: str, args: Sequence[str], timeout: float = 60.0,
              env: Mapping[str, str] | None = None) -> ServerProcess:
        server = start_server(name, args, log_dir=self.log_dir, timeout=timeout, env=env)
        self.servers[name] = server
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():  # all at once, then wait for each
            server.terminate()
        for server in self.servers.values():
            server.wait_or_kill()

    def __enter__(self) -> ServerGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()
