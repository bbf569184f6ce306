"""Rounds per study beside its longest analysis: the demo study, the five-analysis bench
study and the 11-analysis catalogue study, each on MPC over real node processes.

A job's rounds should be those of its longest dependency chain (its analyses run side by
side in the MPC worker), so the study's rounds sit a little above its longest analysis's
(handshake and final synchronisation), not at the sum. Run as
``python -m securecalc_bench.study_rounds [WORKDIR]``; prints one line per study and a JSON
record.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_study_config
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc_bench.analyses import FIVE, analyses_toml
from securecalc_bench.datasets import BENCH_CATALOGUE_TOML, BENCH_SCHEMA_TOML, write_sites

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
#: the catalogue study on GBSG2-sized data: 11 analyses, 3 x 229 = 687 rows
CATALOGUE_ROWS = 229
CATALOGUE_ANALYSES_TOML = """
[[analysis]]
id = "age_quartiles"
kind = "quantiles"
column = "age"
probs = [0.25, 0.5, 0.75]

[[analysis]]
id = "median_sbp"
kind = "median"
column = "sbp"

[[analysis]]
id = "min_age"
kind = "min"
column = "age"

[[analysis]]
id = "max_followup"
kind = "max"
column = "followup_days"

[[analysis]]
id = "sbp_histogram"
kind = "histogram"
column = "sbp"
edges = [80, 110, 130, 150, 180, 221]

[[analysis]]
id = "arm_by_diabetes"
kind = "crosstab"
row = "arm"
col = "diabetes"

[[analysis]]
id = "sbp_by_arm"
kind = "ttest"
column = "sbp"
group = "arm"
levels = ["a", "b"]

[[analysis]]
id = "correlations"
kind = "correlation"
columns = ["age", "bmi", "sbp"]

[[analysis]]
id = "covariances"
kind = "covariance"
columns = ["age", "sbp"]

[[analysis]]
id = "sbp_model"
kind = "linreg"
y = "sbp"
x = ["age", "bmi", "sex"]

[[analysis]]
id = "diabetes_model"
kind = "logreg"
y = "diabetes"
x = ["age", "bmi"]
"""


def _record(name: str, result: Any, seconds: float) -> dict[str, Any]:
    per = {aid: r.cost.rounds for aid, r in result.results.items()}
    return {"study": name, "rounds": result.cost.rounds, "longest_analysis": max(per.values()),
            "sum_of_analyses": sum(per.values()), "analyses": per,
            "seconds": round(seconds, 3), "phases": result.phases}


def _run(cluster: LocalCluster, name: str, schema: str, analyses: str) -> dict[str, Any]:
    import time

    config = load_study_config(cluster.study(name, "mpc", schema, analyses))
    run_study(config)  # warm: data caches, spare workers
    started = time.perf_counter()
    result = run_study(config)
    return _record(name, result, time.perf_counter() - started)


def measure(root: Path, demo_rows: int = 20_000, bench_rows: int = 20_000) -> list[dict[str, Any]]:
    """Rounds of the three studies (each run once warm after a warming run)."""
    out = []
    for label, rows, schema, catalogue, analyses, files in (
        ("catalogue", CATALOGUE_ROWS, SYNTH_SCHEMA_TOML, None, CATALOGUE_ANALYSES_TOML,
         None),
        ("demo", demo_rows, SYNTH_SCHEMA_TOML, None, DEMO_ANALYSES_TOML, None),
        ("five", bench_rows, BENCH_SCHEMA_TOML, BENCH_CATALOGUE_TOML, analyses_toml(FIVE.ids),
         "bench"),
    ):
        data = root / f"data-{label}"
        if files == "bench":
            paths = write_sites(data, sites=3, rows=rows)
        else:
            paths = dict(zip(HOSPITALS, write_cohort(data, sites=3, rows=rows, seed=7,
                                                     names=HOSPITALS), strict=True))
        extremes = dict.fromkeys(paths, "[policy]\nallow_extremes = true\n")
        with LocalCluster.start(root / f"cluster-{label}", paths, with_compute=False,
                                catalogue=catalogue, node_extra=extremes) as cluster:
            out.append(_run(cluster, label, schema, analyses))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        records = measure(Path(args[0]))
    else:
        with tempfile.TemporaryDirectory(prefix="securecalc-rounds-") as tmp:
            records = measure(Path(tmp))
    for r in records:
        print(f"{r['study']:<10} {r['rounds']:>4} rounds (longest analysis {r['longest_analysis']},"
              f" sum of analyses {r['sum_of_analyses']}), {r['seconds']:.2f} s warm",
              flush=True)
    print(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
