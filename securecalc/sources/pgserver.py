"""A throw-away PostgreSQL server for tests and ``securecalc demo --source omop``: initdb and
pg_ctl in a temporary folder, on a free loopback port.

initdb refuses to run as root, so under root the server runs as the ``postgres`` user
(created, as a system user without a home, when this machine lacks it). Password
authentication (SCRAM) is required over TCP; the superuser is ``postgres``, with a random
password of this server's own.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg

SERVER_USER = "postgres"
#: where distributions put the server programs (newest major version first)
BIN_DIRS = ("/usr/local/bin",
            *sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
                    key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit()
                    else 0, reverse=True),
            "/usr/local/pgsql/bin")


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a test PostgreSQL server (the message says why)."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in BIN_DIRS if (Path(d) / name).is_file()), None)
    if found is None:
        raise PostgresUnavailable(f"{name} not found on PATH or in {', '.join(BIN_DIRS)}: "
                                  "install the PostgreSQL server (15 or later)")
    return found


def _server_account() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs the server's programs, and the account (None: us)."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam(SERVER_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise PostgresUnavailable("running as root without a 'postgres' user, and "
                                      "useradd is missing to create one") from None
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SERVER_USER], check=True, capture_output=True)
        account = pwd.getpwnam(SERVER_USER)
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and runuser is missing: cannot start "
                                  "PostgreSQL as the 'postgres' user")
    return [runuser, "-u", SERVER_USER, "--"], account


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A throw-away server; :meth:`stop` (or leaving a ``with`` block) removes everything it
    wrote."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self.prefix, account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="securecalc-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.password = secrets.token_urlsafe(18)
        self.started = False
        try:
            self._init(account)
        except BaseException:
            self.stop()
            raise

    def _init(self, account: pwd.struct_passwd | None) -> None:
        password_file = self.root / "superuser-password"
        password_file.write_text(self.password + "\n")
        if account is not None:
            for path in (self.root, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run(self.initdb, "-D", str(self.data), "-U", SERVER_USER, "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={password_file}", "--no-sync")
        password_file.unlink()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses={self.host} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.started = True

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.prefix, *command], capture_output=True, text=True,
                                cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: "
                                      f"{result.stderr.strip()}\n{tail}")

    def connect(self, database: str = "postgres", user: str = SERVER_USER,
                password: str | None = None, autocommit: bool = True) -> psycopg.Connection:
        """A connection (by default the superuser's) to ``database``."""
        return psycopg.connect(host=self.host, port=self.port, dbname=database, user=user,
                               password=self.password if password is None else password,
                               autocommit=autocommit)

    def stop(self) -> None:
        """Stop the server (if it still runs) and remove its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                try:
                    self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w",
                              "stop")
                except PostgresUnavailable:
                    if (self.data / "postmaster.pid").exists():  # not stopped meanwhile
                        raise
        finally:
            self.started = False
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["PostgresServer", "PostgresUnavailable", "free_port"]
