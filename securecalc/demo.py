"""``securecalc demo``: three hospitals and a compute node on this machine, both engines.

It creates a study CA, synthetic data for three hospitals, starts three party nodes and one
compute node as separate processes on loopback with mutual TLS, runs the same study with the
MPC and the CKKS engine, prints each result beside the pooled plaintext value, and stops every
process it started, also when something fails.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.core.table import load_table
from securecalc.engines.plain import pooled_result
from securecalc.report import format_study
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, synth_schema, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")


def run_demo(*, rows: int = 50_000, workdir: Path | None = None) -> int:
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="securecalc-demo-") as tmp:
            return _run(Path(tmp), rows)
    workdir.mkdir(parents=True, exist_ok=True)
    return _run(workdir, rows)


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _run(root: Path, rows: int) -> int:
    data = root / "data"
    _step(f"synthetic cohort: {len(HOSPITALS)} hospitals x {rows} rows in {data}")
    files = write_cohort(data, sites=len(HOSPITALS), rows=rows, seed=7, names=HOSPITALS)

    _step("starting 3 party nodes and 1 compute node (separate processes, mutual TLS)")
    # ckks = "exact": the demo's nodes accept exact CKKS results, so the coordinator (who
    # holds the key) sees pooled totals, small cells and cohorts included, before any gate.
    with LocalCluster.start(root, dict(zip(HOSPITALS, files, strict=True)),
                            ckks="exact") as cluster:
        for name, address in cluster.addresses.items():
            print(f"    {name:<11} {address}")
        schema = synth_schema()
        tables = [load_table(f, schema) for f in files]
        for engine in ("mpc", "ckks"):
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
    print("demo finished")
    return 0
