"""What the hospitals' agreement round costs a study: seconds per small study, and the round.

A 3-node loopback cluster with real certificates runs a count and a mean, on MPC and on CKKS,
``--reps`` times each (after one warm-up). Reported: the median seconds of a whole study as
``run_study`` sees it, and the median seconds of the agreement round at one node, read from
its audit log (from the admission's ``policy_decision`` to ``job_start``), with the number of
confirmations a job makes (m (m - 1)). Run it on two checkouts to compare them side by side:

    python -m securecalc_bench.agreement_cost [--reps 12] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
ANALYSES = ('[[analysis]]\nid = "n"\nkind = "count"\n\n'
            '[[analysis]]\nid = "m"\nkind = "mean"\ncolumn = "age"\n')


def measure(root: Path, reps: int) -> dict[str, Any]:
    files = write_cohort(root / "data", sites=3, rows=1000, seed=1, names=HOSPITALS)
    out: dict[str, Any] = {"parties": len(HOSPITALS),
                           "confirmations_per_job": len(HOSPITALS) * (len(HOSPITALS) - 1)}
    with LocalCluster.start(root / "cluster", dict(zip(HOSPITALS, files, strict=True)),
                            ckks="exact") as cluster:
        for engine in ("mpc", "ckks"):
            seconds = []
            for i in range(reps + 1):
                study = cluster.study(f"cost-{engine}-{i}", engine, SYNTH_SCHEMA_TOML, ANALYSES)
                started = time.perf_counter()
                run_study(study)
                if i:  # the first run warms the node's worker pool
                    seconds.append(time.perf_counter() - started)
            out[f"{engine}_study_seconds"] = round(statistics.median(seconds), 4)
        out["agreement_seconds"] = _agreement_seconds(cluster.root / "audit" / "hospital-a.jsonl")
    return out


def _agreement_seconds(log: Path) -> float | None:
    """Median seconds from a job's admission to its start at one node (the agreement)."""
    events: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        job = record["data"].get("job")
        if job:
            events.setdefault(job, {})[record["event"]] = datetime.fromisoformat(
                record["time"]).timestamp()
    rounds = [e["job_start"] - e["policy_decision"] for e in events.values()
              if "job_start" in e and "policy_decision" in e]
    return round(statistics.median(rounds), 4) if rounds else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.agreement_cost")
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        record = measure(Path(folder), args.reps)
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
