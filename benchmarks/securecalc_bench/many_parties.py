"""The five-analysis bench study on MPC at 3, 10 and 20 parties, every kind in one study:
whether each completes, its seconds and rounds, and the ratios the bars name (mean and
variance at 20 parties against 3, quantiles at 10 against 3).

    python -m securecalc_bench.many_parties [--rows 100000] [--parties 3,10,20] [--out FILE]

All parties run on this machine: their CPU work adds up on its cores instead of running side
by side, as it would on one machine per hospital.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc_bench.analyses import FIVE, analyses_toml
from securecalc_bench.datasets import BENCH_CATALOGUE_TOML, BENCH_SCHEMA_TOML, write_sites


def measure_parties(root: Path, parties: int, rows: int) -> dict[str, Any]:
    paths = write_sites(root / f"data-{parties}", sites=parties, rows=rows)
    started = time.perf_counter()
    with LocalCluster.start(root / f"cluster-{parties}", paths, with_compute=False,
                            catalogue=BENCH_CATALOGUE_TOML) as cluster:
        cluster_seconds = time.perf_counter() - started
        config = load_study_config(cluster.study(f"parties-{parties}", "mpc",
                                                 BENCH_SCHEMA_TOML, analyses_toml(FIVE.ids)))
        run_study(config)  # warm: spare workers, caches
        started = time.perf_counter()
        result = run_study(config)
        seconds = time.perf_counter() - started
    return {"parties": parties, "rows_per_site": rows, "cluster_start_seconds": cluster_seconds,
            "study_seconds": seconds, "rounds": result.cost.rounds,
            "bytes_sent": result.cost.bytes_sent, "phases": result.phases,
            "analyses": {aid: {"kind": r.kind, "released": r.value is not None,
                               "seconds": r.cost.seconds, "rounds": r.cost.rounds,
                               "bytes_sent": r.cost.bytes_sent}
                         for aid, r in result.results.items()}}


def ratios(records: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds of one analysis at m parties over its seconds at 3."""
    by = {r["parties"]: r["analyses"] for r in records}
    out: dict[str, float] = {}
    if 3 not in by:
        return out
    for parties, ids in ((20, ("mean_value", "var_value")), (10, ("quantiles_value",))):
        for aid in ids:
            if parties in by and aid in by[parties]:
                out[f"{aid} at {parties} vs 3 parties"] = (
                    by[parties][aid]["seconds"] / by[3][aid]["seconds"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.many_parties")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--parties", default="3,10,20")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    counts = [int(p) for p in args.parties.split(",")]
    with tempfile.TemporaryDirectory(prefix="securecalc-parties-") as tmp:
        records = []
        for parties in counts:
            records.append(measure_parties(Path(tmp), parties, args.rows))
            r = records[-1]
            print(f"{parties:>3} parties: {r['study_seconds']:.2f} s, {r['rounds']} rounds, "
                  + ", ".join(f"{aid} {a['seconds']:.2f} s/{a['rounds']} r"
                              + ("" if a["released"] else " (withheld)")
                              for aid, a in r["analyses"].items()), flush=True)
    record = {"records": records, "ratios": ratios(records)}
    print(json.dumps(record["ratios"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
