"""The sources sweep (issue 12, scale): a node's local phase on ``[[source]]`` rows from 10^6
to 10^8 rows, Parquet and PostgreSQL, against the engine's own plain aggregation query on the
same rows, with node peak memory.

For each source and size: the five-analysis bench study's local phase as a node computes it
(:mod:`securecalc_bench.sources_node`, mode ``node``), the hand-written plain query (mode
``plain``), and for contrast at the smaller sizes the ``[data] path`` node that loads every
row (mode ``legacy``). Every measurement runs in a fresh process, so its peak resident set
(``ru_maxrss``) and Python heap peak (tracemalloc) are its own; a PostgreSQL server's own
memory is not counted. Parquet files are cached under ``WORK/parquet`` by size and seed;
PostgreSQL tables are copied from them into a throw-away server (COPY, then ANALYZE).
Writes ``sources.json`` and ``sources.md``. Run with ``securecalc bench --only sources`` or
``python -m securecalc_bench.sources_sweep [--quick] --out OUT --work WORK``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from securecalc_bench.scale_data import CHUNK_ROWS, TABLE, load_postgres, write_parquet

Progress = Callable[[str], None]
Record = dict[str, Any]
PASSWORD_ENV = "SECURECALC_BENCH_PG_PASSWORD"
DATABASE = "bench"


@dataclass(frozen=True)
class SourcesPlan:
    """Rows per source of each measurement, repetitions (fresh processes) per measurement."""

    name: str
    parquet_rows: tuple[int, ...]
    postgres_rows: tuple[int, ...]
    legacy_rows: tuple[int, ...]
    reps: int
    seed: int = 0
    chunk_rows: int = CHUNK_ROWS


def full_plan() -> SourcesPlan:
    return SourcesPlan("full", (10**6, 10**7, 10**8), (10**6, 10**7), (10**6, 10**7), reps=1)


def quick_plan() -> SourcesPlan:
    """Seconds: small files written in several chunks, every mode and source once."""
    return SourcesPlan("quick", (30_000,), (30_000,), (30_000,), reps=1, chunk_rows=10_000)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def measure_once(spec: Record, env: dict[str, str] | None = None) -> Record:
    """One fresh ``sources_node`` process's record."""
    done = subprocess.run([sys.executable, "-m", "securecalc_bench.sources_node",
                           json.dumps(spec)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else f"exit {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(spec: Record, reps: int, env: dict[str, str] | None = None) -> Record:
    """``reps`` fresh processes: the median seconds, the largest memory peaks."""
    base = {"source": spec["label"], "rows": spec["rows"], "mode": spec["mode"]}
    try:
        runs = [measure_once(spec, env) for _ in range(reps)]
    except Exception as exc:  # noqa: BLE001 - a failed measurement must not end the sweep
        return {**base, "status": "error", "note": f"{type(exc).__name__}: {exc}"[:300]}
    record: Record = {**base, "status": "ok", "reps": reps,
                      "local_seconds": statistics.median(r["local_seconds"] for r in runs),
                      "local_seconds_all": [r["local_seconds"] for r in runs]}
    for key in ("start_seconds", "admit_seconds"):
        if key in runs[0]:
            record[key] = statistics.median(r[key] for r in runs)
    for key in ("rss_peak_mb", "heap_peak_mb"):
        record[key] = max(r[key] for r in runs)
    record["rss_after_imports_mb"] = min(r["rss_after_imports_mb"] for r in runs)
    if "pushed_down" in runs[0]:
        record["pushed_down"] = all(r["pushed_down"] for r in runs)
    return record


def _parquet_source(path: Path) -> Record:
    return {"kind": "file", "name": "rows", "format": "parquet", "path": str(path)}


@contextmanager
def postgres_database() -> Iterator[tuple[Any, Record]]:
    """A throw-away server with an empty database; (server, connection fields)."""
    from securecalc.sources.pgserver import PostgresServer

    with PostgresServer() as server:
        with server.connect() as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield server, {"kind": "postgres", "name": "rows", "host": server.host,
                       "port": server.port, "database": DATABASE, "user": "postgres",
                       "password_env": PASSWORD_ENV, "sslmode": "disable"}


class SourcesSweep:
    def __init__(self, plan: SourcesPlan, work: Path, progress: Progress = _stderr,
                 out: Path | None = None):
        self.plan, self.work, self.progress = plan, Path(work), progress
        #: where the outputs so far are rewritten after each measurement
        self.out = out
        self.records: list[Record] = []
        self.loads: list[Record] = []
        self.started = time.perf_counter()

    def _parquet(self, rows: int) -> Path:
        started = time.perf_counter()
        path = write_parquet(self.work / "parquet", rows, seed=self.plan.seed,
                             chunk_rows=self.plan.chunk_rows)
        self.progress(f"      parquet {rows} rows ready in {time.perf_counter() - started:.0f} s"
                      f" ({path.stat().st_size / 1e9:.2f} GB)")
        return path

    def _add(self, spec: Record, env: dict[str, str] | None = None) -> None:
        record = measure(spec, self.plan.reps, env)
        self.records.append(record)
        self.progress(f"      {describe(record)}")
        if self.out is not None:
            write_outputs(self.results(), self.out)

    def run_parquet(self, rows: int, modes: Sequence[str]) -> None:
        path = self._parquet(rows)
        for mode in modes:
            spec: Record = {"label": "parquet", "rows": rows, "mode": mode}
            if mode == "legacy":
                spec["path"] = str(path)
            else:
                spec["source"] = _parquet_source(path)
            self._add(spec)

    def run_postgres(self, rows: int, server: Any, fields: Record) -> None:
        path = self._parquet(rows)
        table = f"{TABLE}_{rows}"
        started = time.perf_counter()
        with server.connect(DATABASE, autocommit=False) as conn:
            load_postgres(conn, path, table)
        seconds = time.perf_counter() - started
        self.loads.append({"rows": rows, "copy_analyze_seconds": seconds})
        self.progress(f"      postgres {rows} rows copied and analysed in {seconds:.0f} s")
        env = {PASSWORD_ENV: server.password}
        for mode in ("node", "plain"):
            self._add({"label": "postgres", "rows": rows, "mode": mode,
                       "source": {**fields, "table": table}}, env)
        with server.connect(DATABASE) as conn:
            conn.execute(f"DROP TABLE {table}")  # the next size needs the disk

    def run_all(self) -> None:
        """Parquet by size, the load-everything node at its smallest size, PostgreSQL by
        size, then the load-everything node at its other sizes (the costliest contrast
        last, so a run cut short has the rest)."""
        plan = self.plan
        legacy = sorted(plan.legacy_rows)
        for rows in sorted(plan.parquet_rows):
            self.run_parquet(rows, ["node", "plain"])
        for rows in legacy[:1]:
            self.run_parquet(rows, ["legacy"])
        if plan.postgres_rows:
            with postgres_database() as (server, fields):
                for rows in sorted(plan.postgres_rows):
                    self.run_postgres(rows, server, fields)
        for rows in legacy[1:]:
            self.run_parquet(rows, ["legacy"])

    def results(self) -> Record:
        from securecalc_bench.runner import machine, revision, versions

        return {"meta": {"machine": machine(), "versions": versions(), "revision": revision(),
                         "duration_seconds": time.perf_counter() - self.started},
                "plan": asdict(self.plan), "postgres_loads": self.loads,
                "records": self.records}

    def run(self) -> Record:
        self.progress(f"securecalc bench: sources sweep ({self.plan.name}): parquet "
                      f"{list(self.plan.parquet_rows)}, postgres {list(self.plan.postgres_rows)}")
        self.run_all()
        return self.results()


def describe(record: Record) -> str:
    head = f"{record['source']:<8} {record['rows']:>10} {record['mode']:<6}"
    if record["status"] != "ok":
        return f"{head} {record['status']}: {record['note']}"
    return (f"{head} {record['local_seconds']:.3g} s, peak RSS {record['rss_peak_mb']:.0f} MiB, "
            f"Python heap {record['heap_peak_mb']:.1f} MiB")


# ------------------------------------------------------------------------------- outputs

def _find(records: Sequence[Record], source: str, rows: int, mode: str) -> Record | None:
    for r in records:
        if (r["source"], r["rows"], r["mode"], r["status"]) == (source, rows, mode, "ok"):
            return r
    return None


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    x = float(x)
    return f"{x:,.0f}" if x >= 100 else f"{x:.{digits}g}"


def _rows(n: int) -> str:
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else f"{n:,}"


def markdown(results: Record) -> str:
    from securecalc_bench.output import table

    records = results["records"]
    lines = ["# securecalc bench: sources sweep", "",
             f"{results['meta']['machine']}; {results['meta']['versions']}; revision "
             f"{results['meta']['revision']}; {results['meta']['duration_seconds']:.0f} s.", "",
             "Local phase of the five-analysis bench study on one node (`data_for` + "
             "`local_contributions`: the catalogue check of every row, then the statistics "
             "pushed down) against the engine's own plain aggregation queries on the same "
             "rows (one SELECT of the count and sums, one grouped SELECT of the counts); "
             "`admit` (the same row check, before each study) is timed apart. Peak resident "
             "set (VmHWM: includes DuckDB, not the PostgreSQL server) and Python heap peak "
             "(tracemalloc, on during every measurement) of a fresh process per measurement. "
             "Legacy: a `[data] path` node loading the Parquet file whole, then the same "
             "local phase.", ""]
    out_rows = []
    keys = sorted({(r["source"], r["rows"]) for r in records},
                  key=lambda k: (k[0] != "parquet", k[1]))
    for source, rows in keys:
        node, plain = _find(records, source, rows, "node"), _find(records, source, rows, "plain")
        legacy = _find(records, source, rows, "legacy")
        if node is None and plain is None and legacy is None:
            continue
        ratio = (node["local_seconds"] / plain["local_seconds"]
                 if node is not None and plain is not None else None)
        out_rows.append([
            source, _rows(rows),
            _num(node and node.get("admit_seconds")),
            _num(node and node["local_seconds"]), _num(plain and plain["local_seconds"]),
            "-" if ratio is None else f"{ratio:.1f}x",
            _num(node and node["rss_peak_mb"]), _num(node and node["heap_peak_mb"]),
            _num(plain and plain["rss_peak_mb"]),
            _num(legacy and legacy["rss_peak_mb"]), _num(legacy and legacy["heap_peak_mb"])])
    lines.append(table(["source", "rows", "node admit (s)", "node local phase (s)",
                        "plain queries (s)", "ratio", "node peak RSS (MiB)",
                        "node Python heap (MiB)", "plain peak RSS (MiB)",
                        "legacy peak RSS (MiB)", "legacy Python heap (MiB)"], out_rows))
    if results.get("postgres_loads"):
        lines += ["", "PostgreSQL loading (COPY + ANALYZE, not part of the measurements): "
                  + ", ".join(f"{_rows(x['rows'])} rows {x['copy_analyze_seconds']:.0f} s"
                              for x in results["postgres_loads"]) + "."]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed: " + "; ".join(f"{r['source']} {_rows(r['rows'])} {r['mode']}: "
                                               f"{r['note']}" for r in failed)]
    return "\n".join(lines) + "\n"


def write_outputs(results: Record, out: Path) -> list[Path]:
    from securecalc_bench.output import write_json

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "sources.json", out / "sources.md"]
    write_json(paths[0], results)
    paths[1].write_text(markdown(results))
    return paths


def run(out: Path, work: Path, *, quick: bool = False, reps: int | None = None,
        progress: Progress = _stderr) -> list[Path]:
    """Run the sweep and write its outputs; their paths."""
    plan = quick_plan() if quick else full_plan()
    if reps is not None:
        plan = SourcesPlan(**{**asdict(plan), "reps": max(1, reps)})
    return write_outputs(SourcesSweep(plan, work, progress, out).run(), out)


def run_in(out: Path, work: Path | None, *, quick: bool = False,
           reps: int | None = None) -> list[Path]:
    """:func:`run` in ``work``, or in a temporary folder removed afterwards."""
    import tempfile

    if work is not None:
        return run(out, work, quick=quick, reps=reps)
    with tempfile.TemporaryDirectory(prefix="securecalc-sources-") as tmp:
        return run(out, Path(tmp), quick=quick, reps=reps)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.sources_sweep")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--work", default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    for path in run_in(Path(args.out), Path(args.work) if args.work else None,
                       quick=args.quick, reps=args.reps):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SourcesPlan", "SourcesSweep", "full_plan", "markdown", "measure", "quick_plan",
           "run", "run_in", "write_outputs"]
