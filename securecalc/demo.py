"""``securecalc demo``: three hospitals and a compute node on this machine, both engines.

It creates a study CA, synthetic data for three hospitals, starts three party nodes and one
compute node as separate processes on loopback with mutual TLS, runs the same study with the
MPC and the CKKS engine, prints each result beside the pooled plaintext value, and stops every
process it started, also when something fails.

With ``source="omop"`` the same rows are written as an OMOP CDM extract and loaded into a
throw-away PostgreSQL server (one database per hospital); each node reads its database through
a ``[[source]]`` of kind ``omop``, and the server is stopped at the end.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from securecalc.cluster import LocalCluster, NodeData
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.core.table import load_table
from securecalc.engines.plain import pooled_result
from securecalc.report import format_study
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
SOURCES = ("file", "omop")
SEED = 7


def run_demo(*, rows: int = 50_000, workdir: Path | None = None,
             source: str = "file", engines: Sequence[str] = ("mpc", "ckks")) -> int:
    """Run the demo; ``source`` is where the nodes read their rows: ``file`` (a CSV each) or
    ``omop`` (an OMOP CDM database each, in PostgreSQL)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="securecalc-demo-") as tmp:
            return _run(Path(tmp), rows, source, engines)
    workdir.mkdir(parents=True, exist_ok=True)
    return _run(workdir, rows, source, engines)


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _run(root: Path, rows: int, source: str, engines: Sequence[str]) -> int:
    data = root / "data"
    _step(f"synthetic cohort: {len(HOSPITALS)} hospitals x {rows} rows in {data}")
    files = write_cohort(data, sites=len(HOSPITALS), rows=rows, seed=SEED, names=HOSPITALS)
    with ExitStack() as stack:
        node_data: dict[str, NodeData] = dict(zip(HOSPITALS, files, strict=True))
        if source == "omop":
            from securecalc.demo_omop import omop_sources
            from securecalc.sources.pgserver import PostgresServer

            _step("starting a temporary PostgreSQL server")
            server = stack.enter_context(PostgresServer())
            _step(f"the same rows as an OMOP CDM extract, one database per hospital "
                  f"(PostgreSQL on {server.host}:{server.port})")
            node_data = dict(omop_sources(server, data, HOSPITALS, rows=rows, seed=SEED))
        _cluster(root, node_data, files, engines)
        if source == "omop":
            _step("stopping the PostgreSQL server")
    print("demo finished")
    return 0


def _cluster(root: Path, node_data: dict[str, NodeData], files: list[Path],
             engines: Sequence[str]) -> None:
    compute = " and 1 compute node" if "ckks" in engines else ""
    _step(f"starting {len(node_data)} party nodes{compute} (separate processes, mutual TLS)")
    # ckks = "exact": the demo's nodes accept exact CKKS results, so the coordinator (who
    # holds the key) sees pooled totals, small cells and cohorts included, before any gate.
    with LocalCluster.start(root, node_data, ckks="exact",
                            with_compute="ckks" in engines) as cluster:
        for name, address in cluster.addresses.items():
            print(f"    {name:<11} {address}")
        schema = synth_schema()
        tables = [load_table(f, schema) for f in files]
        for engine in engines:
            config = load_study_config(cluster.study(f"demo-{engine}", engine,
                                                     SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML))
            _step(f"running the study with the {engine.upper()} engine")
            started = time.perf_counter()
            result = run_study(config)
            result.write(root / f"results-{engine}.json")
            pooled = {a.id: pooled_result(a, schema, tables) for a in config.analyses}
            reference = {aid: ref for aid, ref in pooled.items() if ref is not None}
            print(format_study(result, reference))
            print(f"    ({time.perf_counter() - started:.2f} s end to end; "
                  f"results-{engine}.json in {root})")
        _step("stopping every process")
