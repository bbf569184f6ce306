"""The MPC worker process: one job, one MPyC runtime, one process (start it with 'spawn').

MPyC keeps its runtime in module globals, so a process runs exactly one job; the node never
imports mpyc. Messages on the pipe (plain tuples):

node -> worker: ``("in", peer_pid, data)``, ``("lost", peer_pid, reason)``, ``("abort", reason)``
worker -> node: ``("out", peer_pid, data)``, ``("done", JobResult)``,
``("failed", kind, message, peer_pid | None)``

``kind`` is one of ``party_lost``, ``timeout``, ``input``, ``config``, ``protocol``,
``aborted``, ``internal``. Inputs are checked before they are shared: an ``input`` failure
at the start means this party sent nothing at all, one in a later round of an iterative step
that nothing of that round left. A failed worker sends each peer an ABORT whose code names
the kind (:data:`~securecalc.engines.mpc.frames.ABORT_CODES`), never the message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from securecalc.engines.mpc.failure import Failure
from securecalc.engines.mpc.session import PeerChannel, Session
from securecalc.engines.mpc.task import MpcJob
from securecalc.errors import ConfigError, DataError

_ARGV = ["securecalc-mpc-worker", "--no-log"]
log = logging.getLogger(__name__)


def _import_mpyc() -> Any:
    """Import mpyc with a harmless argv (its import parses and rewrites ``sys.argv``)."""
    saved = sys.argv
    sys.argv = list(_ARGV)
    try:
        import mpyc
        import mpyc.runtime
    finally:
        sys.argv = saved
    logging.getLogger().setLevel(logging.WARNING)
    return mpyc


#: most subsets ``C(m - 1, t)`` a party evaluates a PRF for, per random value, under PRSS
PRSS_MAX_SUBSETS = 20


def uses_prss(m: int, t: int) -> bool:
    """Whether ``m`` parties at threshold ``t`` use MPyC's pseudorandom secret sharing.

    PRSS makes shared randomness free of messages but costs every party ``C(m - 1, t)`` PRF
    evaluations per random value: 2 at 3 parties, 20 at 7, 126 at 10, 92378 at 20. Beyond
    :data:`PRSS_MAX_SUBSETS` the random values are input by ``t + 1`` parties instead (one
    round, ``t + 1`` shares to add), with the same threshold ``t``.
    """
    return math.comb(m - 1, t) <= PRSS_MAX_SUBSETS


def build_runtime(job: MpcJob, loop: asyncio.AbstractEventLoop) -> Any:
    """An MPyC ``Runtime`` for ``job`` without sockets, installed as MPyC's global runtime.

    Mirrors ``mpyc.runtime.setup()``: options from MPyC's own parser (explicit argv),
    threshold ``t = (m - 1) // 2``, PRSS as :func:`uses_prss` decides, then the module
    globals ``setup()`` assigns.
    Peers' ``protocol`` objects are installed by the caller.
    """
    mpyc = _import_mpyc()
    from mpyc import asyncoro, sectypes
    from mpyc import runtime as rt_mod

    options = mpyc._get_arg_parser().parse_args(
        ["--no-log", "--threshold", str(job.threshold)])
    options.no_async = False
    options.no_prss = not uses_prss(job.m, job.threshold)
    options.mix32_64bit = False
    asyncio.set_event_loop(loop)
    parties = [rt_mod.Party(i) for i in range(job.m)]
    rt = rt_mod.Runtime(job.pid, parties, options)
    for module in (sectypes, asyncoro, mpyc.mpctools, mpyc.seclists, mpyc.secpols,
                   mpyc.secgroups, mpyc.random, mpyc.statistics):
        module.runtime = rt
    rt_mod.mpc = rt
    rt.start_time = time.time()
    return rt


def _reader(conn: Connection, loop: asyncio.AbstractEventLoop, session: Session) -> None:
    """Forward node messages to the loop; stamp arrivals here so a busy loop is no silence."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = ("abort", "the node closed the pipe")
        except Exception:  # noqa: BLE001 - an unpicklable message is a node bug
            msg = ("bad",)
        if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "in":
            if isinstance(msg[1], int) and msg[1] in session.last_arrival:
                session.last_arrival[msg[1]] = time.monotonic()
        try:
            loop.call_soon_threadsafe(session.on_node_message, msg)
        except RuntimeError:  # loop closed: the job is over
            return
        if isinstance(msg, tuple) and msg[:1] == ("abort",):
            return


def run_spare(conn: Connection) -> None:
    """Spawn target of a spare worker: import everything now, then wait for ``("job", job)``
    and run it (see :class:`~securecalc.engines.mpc.launcher.SparePool`). Exits quietly when
    the node closes the pipe or sends anything else."""
    _import_mpyc()
    from securecalc.engines.mpc import steps  # noqa: F401 - the runners, imported ahead

    try:
        msg = conn.recv()
    except (EOFError, OSError):
        return
    if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "job" and \
            isinstance(msg[1], MpcJob):
        run_worker(conn, msg[1])


def run_worker(conn: Connection, job: MpcJob) -> None:
    """Spawn target: run ``job`` and report ``done`` or ``failed`` on ``conn``."""
    send_lock = threading.Lock()

    def emit(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    try:
        job.validate()
        job.check_inputs()  # before anything is shared or even sent
    except ConfigError as exc:
        emit(("failed", "config", str(exc), None))
        return
    except DataError as exc:
        emit(("failed", "input", str(exc), None))
        return

    loop = asyncio.new_event_loop()
    session: Session | None = None
    try:
        rt = build_runtime(job, loop)
        session = Session(job, rt, loop, emit)
        for p in job.peers:
            rt.parties[p].protocol = PeerChannel(session, p)
        threading.Thread(target=_reader, args=(conn, loop, session), daemon=True,
                         name="mpc-node-reader").start()
        result = loop.run_until_complete(session.execute())
    except Failure as f:
        _report_failure(emit, session, f)
    except ConfigError as exc:
        _report_failure(emit, session, Failure("config", str(exc)))
    except Exception as exc:  # noqa: BLE001 - MPyC stops the loop on a failed coroutine
        if session is not None and session.failure is not None:
            _report_failure(emit, session, session.failure)
        else:
            log.exception("MPC worker failed")
            _report_failure(emit, session, Failure("internal", f"{type(exc).__name__}: {exc}"))
    else:
        _safe(emit, ("done", result))
    finally:
        loop.set_exception_handler(lambda _loop, _ctx: None)  # pending MPyC tasks die quietly


def _report_failure(emit: Any, session: Session | None, f: Failure) -> None:
    if session is not None:
        session.fail(f)
        session.broadcast_abort()
    _safe(emit, ("failed", f.kind, f.message, f.peer))


def _safe(emit: Any, msg: tuple[Any, ...]) -> None:
    try:
        emit(msg)
    except (OSError, ValueError):
        pass  # the node is gone; nobody to tell
