"""Coordinator start-up: how long a warm ``securecalc study run`` spends outside the phases it
reports (interpreter start, imports, reading the study, writing the report).

Runs the five-analysis bench study on MPC against real node processes: once to warm the
nodes, then ``reps`` times as a fresh ``securecalc study run`` process, timing each process
from the outside and subtracting the phases the result reports. Also reports the import time
of the coordinator's modules (``python -X importtime``). Run as
``python -m securecalc_bench.startup [WORKDIR]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from securecalc.cluster import LocalCluster
from securecalc_bench.analyses import FIVE, analyses_toml
from securecalc_bench.datasets import BENCH_CATALOGUE_TOML, BENCH_SCHEMA_TOML, write_sites

COORDINATOR_MODULES = ("securecalc.cli", "securecalc.coordinator.study", "securecalc.wiring",
                       "securecalc.coordinator.mpc", "securecalc.report")


def import_seconds(modules: tuple[str, ...] = COORDINATOR_MODULES) -> float:
    """Cumulative import time of ``modules`` in a fresh interpreter (``-X importtime``)."""
    code = "; ".join(f"import {m}" for m in modules)
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True).stderr
    total = 0
    for line in err.splitlines():
        parts = line.split("|")
        # a top-level import (one space before its name): its cumulative microseconds
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])
    return total / 1e6


def study_run_overhead(study: Path, reps: int) -> list[dict[str, float]]:
    """Per fresh ``securecalc study run``: wall seconds, the reported phases' sum, and the
    difference (start-up and shut-down outside the phases)."""
    out = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            result_path = Path(tmp) / "result.json"
            started = time.perf_counter()
            cli = str(Path(sys.executable).parent / "securecalc")
            subprocess.run([cli, "study", "run", str(study), "--out", str(result_path)],
                           check=True, capture_output=True)
            wall = time.perf_counter() - started
            record: dict[str, Any] = json.loads(result_path.read_text())
        phases = sum(float(v) for v in record.get("phases", {}).values())
        out.append({"wall": wall, "phases": phases, "outside": wall - phases})
    return out


def measure(root: Path, rows: int = 100_000, reps: int = 3) -> dict[str, Any]:
    paths = write_sites(root / "data", sites=3, rows=rows)
    with LocalCluster.start(root / "cluster", paths, with_compute=False,
                            catalogue=BENCH_CATALOGUE_TOML) as cluster:
        study = cluster.study("five", "mpc", BENCH_SCHEMA_TOML, analyses_toml(FIVE.ids))
        study_run_overhead(study, 1)  # warm the nodes
        runs = study_run_overhead(study, reps)
    return {"rows_per_site": rows, "coordinator_import_seconds": import_seconds(),
            "runs": runs,
            "outside_phases_median": statistics.median(r["outside"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        record = measure(Path(args[0]))
    else:
        with tempfile.TemporaryDirectory(prefix="securecalc-startup-") as tmp:
            record = measure(Path(tmp))
    print(f"coordinator start-up: {record['outside_phases_median']:.2f} s outside the reported "
          f"phases (median of {len(record['runs'])}); imports "
          f"{record['coordinator_import_seconds']:.2f} s")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
