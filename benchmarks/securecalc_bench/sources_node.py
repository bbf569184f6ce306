"""One measurement of the sources sweep, in a fresh process so its memory peaks are its own.

Modes: ``node`` runs the local phase of the five-analysis bench study as a node does
(:class:`~securecalc.node.source_store.SourceStore`: ``admit``, then ``data_for`` and
:func:`~securecalc.core.local.local_contributions` on MPC); ``plain`` runs the engine's own
aggregation queries over the same rows (:mod:`securecalc_bench.plain_sql`); ``legacy`` runs
the same local phase on a ``[data] path`` node (:class:`~securecalc.node.datastore.FileStore`,
every row loaded). Prints one JSON object: seconds, the process's peak resident set
(VmHWM, which includes DuckDB's memory but not a PostgreSQL server's; not ``ru_maxrss``,
which a process started by vfork inherits from its parent) and the Python heap peak
(tracemalloc, on during the measurement). Run as
``python -m securecalc_bench.sources_node SPEC_JSON``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from securecalc.core.job import Job
from securecalc.core.local import local_contributions
from securecalc.core.study_model import analysis_from_mapping
from securecalc.core.table import Table
from securecalc.node.datastore import DataStore, FileStore
from securecalc.node.source_store import SourceStore
from securecalc.sources import parse_sources
from securecalc_bench.analyses import FIVE, TABLES
from securecalc_bench.datasets import bench_schema
from securecalc_bench.memory import peak_mb

NODE = "bench-node"


def five_job() -> Job:
    """The five-analysis bench study as the node receives it (no parties: local phase only)."""
    schema = bench_schema()
    analyses = tuple(analysis_from_mapping({"id": aid, **TABLES[aid]}, index=i, schema=schema)
                     for i, aid in enumerate(FIVE.ids))
    return Job("sources-sweep", "five", (), schema, analyses)


def store_for(spec: dict[str, Any]) -> DataStore:
    if spec["mode"] == "legacy":
        return FileStore(Path(spec["path"]), bench_schema(), NODE)
    return SourceStore(parse_sources([spec["source"]]), bench_schema(), NODE)


def local_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """A node's admission of the study (``admit``: for sources, a check of every row) and its
    local phase (``data_for`` + local inputs, as a node reports it), timed apart; whether
    the rows reached this process (``pushed_down`` false). A ``[data] path`` node loads its
    file first, at start (``start_seconds``)."""
    job = five_job()
    store = store_for(spec)
    started = time.perf_counter()
    if isinstance(store, FileStore):
        store.load()
    loaded = time.perf_counter()
    store.admit(job)
    admitted = time.perf_counter()
    with store.data_for(job) as data:
        parts = local_contributions(job, data, "mpc")
    done = time.perf_counter()
    assert len(parts) == len(job.analyses)
    return {"start_seconds": loaded - started if isinstance(store, FileStore) else None,
            "admit_seconds": admitted - loaded,
            "local_seconds": done - admitted, "pushed_down": not isinstance(data, Table)}


def plain(spec: dict[str, Any]) -> dict[str, Any]:
    from securecalc_bench.plain_sql import run_plain

    started = time.perf_counter()
    rows = run_plain(spec["source"])
    return {"local_seconds": time.perf_counter() - started, "rows": rows}


def rss_mb() -> float:
    """The current resident set in MiB (Linux), or -1."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return -1.0


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    floor = rss_mb()  # after imports: the interpreter and libraries alone
    tracemalloc.start()
    try:
        record = plain(spec) if spec["mode"] == "plain" else local_phase(spec)
        _, heap_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak = peak_mb(os.getpid())
    return {**record, "rss_peak_mb": peak, "rss_after_imports_mb": floor,
            "heap_peak_mb": heap_peak / 2**20}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(measure(json.loads(args[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
