"""What a server process holds, read from Linux's /proc: threads, file descriptors, resident
memory and child processes (MPC workers apart from helpers such as multiprocessing's
resource tracker)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Usage:
    """One process's resources at one moment."""

    threads: int
    fds: int
    pipes: int  # of the fds
    rss_mb: float
    workers: int
    helpers: int

    def __str__(self) -> str:
        return (f"threads {self.threads:3d}  fds {self.fds:3d} (pipes {self.pipes:2d})  "
                f"rss {self.rss_mb:6.1f} MiB  "
                f"workers {self.workers}  helpers {self.helpers}")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (started by any of its threads)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _status(pid: int) -> dict[str, str]:
    lines = (PROC / str(pid) / "status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _is_mpc_worker(pid: int) -> bool:
    """A spawned multiprocessing process that is not the resource tracker."""
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline


def fd_kinds(pid: int) -> dict[str, int]:
    """``pid``'s open file descriptors by kind: socket, pipe, anon_inode or file."""
    kinds: dict[str, int] = {}
    for fd in (PROC / str(pid) / "fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        kind = "file" if target.startswith("/") else target.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def usage(pid: int) -> Usage:
    """``pid``'s threads, open fds, VmRSS and children (MPC workers, other helpers)."""
    status = _status(pid)
    kids = children(pid)
    workers = sum(1 for k in kids if _is_mpc_worker(k))
    kinds = fd_kinds(pid)
    return Usage(threads=int(status["Threads"]), fds=sum(kinds.values()),
                 pipes=kinds.get("pipe", 0),
                 rss_mb=int(status["VmRSS"].split()[0]) / 1024,
                 workers=workers, helpers=len(kids) - workers)
