"""The catalogue study on real clinical data: GBSG2 (686 breast-cancer patients, shipped with
lifelines) split over three hospitals, 11 analyses, MPC and CKKS end to end beside the pooled
reference packages on the same rows.

The rows are split deterministically (a seeded permutation, 229/229/228 rows); each hospital
serves its Parquet file with a catalogue of the GBSG2 columns, in a real three-node cluster
with mutual TLS on loopback. The study runs through :func:`securecalc.coordinator.study.
run_study` (the code path of ``securecalc study run``) and, for the figure a user sees, through
the ``securecalc study run`` command itself (a fresh interpreter: imports included).

Figures: cold (the first run after the nodes start: they load their data) and warm (median of
``reps`` runs); rounds and bytes of the study and of its longest analysis; the pooled
reference (statsmodels, lifelines, scipy, numpy computing the same 11 analyses on the 686 rows,
imports excluded and reported apart); the coordinator's start-up (a fresh interpreter's
imports) as its own figure; the machine's load average, since the figures are wall times.
Run as ``python -m securecalc_bench.gbsg2 [--reps N] [--workdir DIR] [--engine mpc|ckks]
[--out FILE]``; prints a table and a JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
SPLIT_SEED = 2024
ROWS = 686

SCHEMA_TOML = """\
[schema.horTh]
type = "category"
levels = ["no", "yes"]

[schema.age]
type = "int"
min = 18
max = 100

[schema.menostat]
type = "category"
levels = ["Pre", "Post"]

[schema.tsize]
type = "int"
min = 1
max = 150

[schema.tgrade]
type = "category"
levels = ["I", "II", "III"]

[schema.pnodes]
type = "int"
min = 0
max = 60

[schema.progrec]
type = "int"
min = 0
max = 2500

[schema.estrec]
type = "int"
min = 0
max = 1500

[schema.time]
type = "int"
min = 1
max = 3000

[schema.cens]
type = "int"
min = 0
max = 1
"""
#: what each hospital offers: the schema's columns, bounds and levels
CATALOGUE_TOML = SCHEMA_TOML.replace("[schema.", "[catalogue.")

#: survival time points (days): every pooled count of events and removals per arm and point
#: is 0 or at least the default min_cell_count (5) on GBSG2; finer grids are withheld
SURVIVAL_GRID = (365, 547, 730, 912, 1095, 1277, 1460, 1642, 3000)
PNODES_PROBS = (0.1, 0.25, 0.5, 0.75, 0.9)
CORRELATED = ("age", "tsize", "pnodes")


def _grid() -> str:
    return "[" + ", ".join(str(t) for t in SURVIVAL_GRID) + "]"


ANALYSES_TOML = f"""
[[analysis]]
id = "age_mean"
kind = "mean"
column = "age"

[[analysis]]
id = "tsize_variance"
kind = "variance"
column = "tsize"

[[analysis]]
id = "pnodes_quantiles"
kind = "quantiles"
column = "pnodes"
probs = [{", ".join(str(p) for p in PNODES_PROBS)}]

[[analysis]]
id = "progrec_median"
kind = "median"
column = "progrec"

[[analysis]]
id = "grade_by_therapy"
kind = "crosstab"
row = "tgrade"
col = "horTh"

[[analysis]]
id = "age_by_therapy"
kind = "ttest"
column = "age"
group = "horTh"
levels = ["yes", "no"]

[[analysis]]
id = "correlations"
kind = "correlation"
columns = ["age", "tsize", "pnodes"]

[[analysis]]
id = "tsize_model"
kind = "linreg"
y = "tsize"
x = ["age", "tgrade", "menostat"]

[[analysis]]
id = "event_model"
kind = "logreg"
y = "cens"
x = ["age", "horTh", "tgrade"]

[[analysis]]
id = "survival"
kind = "kaplan_meier"
time = "time"
event = "cens"
group = "horTh"
grid = {_grid()}

[[analysis]]
id = "survival_test"
kind = "logrank"
time = "time"
event = "cens"
group = "horTh"
grid = {_grid()}
"""


def load_rows() -> Any:
    """GBSG2 as lifelines ships it (a pandas DataFrame, 686 rows)."""
    from lifelines.datasets import load_gbsg2  # type: ignore[import-untyped]

    return load_gbsg2()


def split(frame: Any) -> dict[str, Any]:
    """The rows of each hospital: a seeded permutation cut into three near-equal parts."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    parts = np.array_split(order, len(HOSPITALS))
    return {name: frame.iloc[np.sort(part)].reset_index(drop=True)
            for name, part in zip(HOSPITALS, parts, strict=True)}


def write_nodes(out_dir: Path, frame: Any | None = None) -> dict[str, Path]:
    """One Parquet file per hospital; party name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, part in split(load_rows() if frame is None else frame).items():
        path = out_dir / f"{name}.parquet"
        part.to_parquet(path, index=False)
        paths[name] = path
    return paths


def coarsen(times: np.ndarray) -> np.ndarray:
    """Each time rounded up to the next survival grid point (as the kinds do)."""
    grid = np.asarray(SURVIVAL_GRID)
    return grid[np.searchsorted(grid, times, side="left")]


def reference(frame: Any) -> dict[str, Any]:
    """The 11 analyses on the pooled rows with numpy, scipy, statsmodels and lifelines."""
    import statsmodels.api as sm  # type: ignore[import-untyped]
    from lifelines import KaplanMeierFitter  # type: ignore[import-untyped]
    from lifelines.statistics import logrank_test  # type: ignore[import-untyped]
    from scipy import stats

    age = frame["age"].to_numpy(float)
    tsize = frame["tsize"].to_numpy(float)
    pnodes = frame["pnodes"].to_numpy(float)
    therapy = frame["horTh"].to_numpy(object)
    grade = frame["tgrade"].to_numpy(object)
    event = frame["cens"].to_numpy(int)
    out: dict[str, Any] = {
        "age_mean": float(np.mean(age)),
        "tsize_variance": float(np.var(tsize, ddof=1)),
        "pnodes_quantiles": {str(p): float(np.quantile(pnodes, p, method="inverted_cdf"))
                             for p in PNODES_PROBS},
        "progrec_median": float(np.quantile(frame["progrec"].to_numpy(float), 0.5,
                                            method="inverted_cdf")),
    }
    table = np.array([[np.sum((grade == g) & (therapy == h)) for h in ("no", "yes")]
                      for g in ("I", "II", "III")])
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    out["grade_by_therapy"] = {"table": table, "chi2": chi2, "p_value": p_value, "dof": dof}
    welch = stats.ttest_ind(age[therapy == "yes"], age[therapy == "no"], equal_var=False)
    out["age_by_therapy"] = {"t": float(welch.statistic), "p_value": float(welch.pvalue)}
    out["correlations"] = np.corrcoef(np.vstack([age, tsize, pnodes]))
    dummies = np.column_stack([grade == "II", grade == "III"]).astype(float)
    post = (frame["menostat"].to_numpy(object) == "Post").astype(float)
    out["tsize_model"] = sm.OLS(tsize, sm.add_constant(
        np.column_stack([age, dummies, post]))).fit()
    yes = (therapy == "yes").astype(float)
    out["event_model"] = sm.Logit(event.astype(float), sm.add_constant(
        np.column_stack([age, yes, dummies]))).fit(disp=0)
    coarse = coarsen(frame["time"].to_numpy(float))
    out["survival"] = {level: KaplanMeierFitter().fit(coarse[therapy == level],
                                                      event[therapy == level])
                       for level in ("no", "yes")}
    out["survival_test"] = logrank_test(coarse[therapy == "no"], coarse[therapy == "yes"],
                                        event[therapy == "no"], event[therapy == "yes"])
    return out


#: coefficient names of the secure models, in the order of the reference design columns
LINREG_TERMS = ("(intercept)", "age", "tgrade[II]", "tgrade[III]", "menostat[Post]")
LOGREG_TERMS = ("(intercept)", "age", "horTh[yes]", "tgrade[II]", "tgrade[III]")


def time_reference(frame: Any, reps: int) -> dict[str, float]:
    """Seconds to import the reference packages (a fresh interpreter) and to compute the 11
    analyses with them (median of ``reps``, imports done)."""
    imports = _fresh_seconds(
        "-c", "import statsmodels.api, lifelines, lifelines.statistics, scipy.stats, numpy")
    reference(frame)  # warm
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        reference(frame)
        runs.append(time.perf_counter() - started)
    return {"imports_seconds": imports, "seconds": statistics.median(runs)}


def _study_record(result: Any) -> dict[str, Any]:
    per = [r.cost.rounds for r in result.results.values() if r.cost.rounds is not None]
    return {"rounds": result.cost.rounds, "bytes_sent": result.cost.bytes_sent,
            "ciphertexts": result.cost.ciphertexts,
            "longest_analysis_rounds": max(per, default=None),
            "sum_of_analysis_rounds": sum(per) if per else None,
            "withheld": sorted(aid for aid, r in result.results.items()
                               if r.value is None or r.note),
            "phases": {k: round(v, 4) for k, v in result.phases.items()},
            "analysis_rounds": {aid: r.cost.rounds for aid, r in result.results.items()},
            "analysis_bytes": {aid: r.cost.bytes_sent for aid, r in result.results.items()}}


def _fresh_seconds(*args: str) -> float:
    """Wall seconds of ``python ARGS`` in a fresh interpreter."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def coordinator_startup(reps: int) -> float:
    """Median seconds of a fresh interpreter importing the command line, the coordinator and
    the study config: what every ``study run`` pays before it contacts a node."""
    code = "import securecalc.cli, securecalc.coordinator.study, securecalc.core.config"
    return statistics.median(_fresh_seconds("-c", code) for _ in range(reps))


def time_engine(cluster: Any, engine: str, reps: int, work: Path) -> dict[str, Any]:
    """Cold and warm end-to-end seconds of the study on ``engine``."""
    from securecalc.coordinator.study import run_study
    from securecalc.core.config import load_study_config

    path = cluster.study(f"gbsg2-{engine}", engine, SCHEMA_TOML, ANALYSES_TOML,
                         extra_study="timeout_seconds = 300\n")
    config = load_study_config(path)
    started = time.perf_counter()
    result = run_study(config)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(reps):
        started = time.perf_counter()
        result = run_study(config)
        warm.append(time.perf_counter() - started)
    out = str(work / f"results-{engine}.json")
    cli = [_fresh_seconds("-m", "securecalc", "study", "run", str(path), "--out", out)
           for _ in range(max(1, reps // 2))]
    return {"engine": engine, "cold_seconds": cold, "warm_seconds": statistics.median(warm),
            "warm_min_seconds": min(warm), "cli_warm_seconds": statistics.median(cli),
            **_study_record(result)}


def measure(work: Path, reps: int = 5, engines: tuple[str, ...] = ("mpc", "ckks")
            ) -> dict[str, Any]:
    """Start the cluster, time each engine and the pooled reference."""
    from securecalc.cluster import LocalCluster

    load_before = os.getloadavg()[0]
    frame = load_rows()
    paths = write_nodes(work / "data", frame)
    started = time.perf_counter()
    with LocalCluster.start(work / "cluster", paths, with_compute="ckks" in engines,
                            ckks="exact", catalogue=CATALOGUE_TOML) as cluster:
        start_seconds = time.perf_counter() - started
        runs = [time_engine(cluster, engine, reps, work) for engine in engines]
    return {"rows": len(frame), "sites": len(HOSPITALS), "analyses": 11, "reps": reps,
            "cluster_start_seconds": start_seconds, "engines": runs,
            "coordinator_startup_seconds": coordinator_startup(max(1, reps // 2)),
            "pooled": time_reference(frame, reps),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def report(record: Mapping[str, Any]) -> str:
    """The figures as a small table."""
    lines = [f"GBSG2: {record['rows']} rows, {record['sites']} hospitals, "
             f"{record['analyses']} analyses "
             f"(cluster start {record['cluster_start_seconds']:.2f} s; 1-minute load average "
             f"{record['load_average'][0]:.1f} before, {record['load_average'][1]:.1f} after)"]
    for r in record["engines"]:
        cost = (f"{r['rounds']} rounds (longest analysis {r['longest_analysis_rounds']}, sum "
                f"{r['sum_of_analysis_rounds']})" if r["engine"] == "mpc"
                else f"{r['ciphertexts']} ciphertexts")
        lines.append(f"{r['engine']:<5} warm {r['warm_seconds']:.2f} s (min "
                     f"{r['warm_min_seconds']:.2f}), cold {r['cold_seconds']:.2f} s, "
                     f"`study run` command {r['cli_warm_seconds']:.2f} s; {cost}, "
                     f"{r['bytes_sent'] / 1e6:.2f} MB sent"
                     + (f"; withheld: {', '.join(r['withheld'])}" if r["withheld"] else ""))
    lines.append(f"coordinator start-up (fresh interpreter importing the command line and the "
                 f"coordinator) {record['coordinator_startup_seconds']:.2f} s")
    pooled = record["pooled"]
    lines.append(f"pooled statsmodels/lifelines/scipy/numpy {pooled['seconds']:.3f} s "
                 f"(imports {pooled['imports_seconds']:.2f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.gbsg2")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--engine", choices=("mpc", "ckks"), action="append")
    parser.add_argument("--out", type=Path, help="also write the JSON record here")
    args = parser.parse_args(argv)
    engines = tuple(args.engine or ("mpc", "ckks"))
    if args.workdir:
        record = measure(args.workdir, args.reps, engines)
    else:
        with tempfile.TemporaryDirectory(prefix="securecalc-gbsg2-") as tmp:
            record = measure(Path(tmp), args.reps, engines)
    print(report(record), flush=True)
    text = json.dumps(record, indent=1, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
