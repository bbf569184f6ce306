"""Where the time of a five-analysis study goes: phases, a py-spy profile of one node and its
MPC worker, and a pyinstrument profile of one site's local aggregation.

    .venv/bin/pip install py-spy pyinstrument      # profilers are not project dependencies
    .venv/bin/python benchmarks/profile_study.py --rows 1000000 --out benchmarks/results/profile

Writes ``phases-ENGINE.json`` (every run's phases), ``pyspy-node-ENGINE.txt`` (top functions
by samples holding the GIL, in one node process and its spawned MPC workers) and ``local.txt``
(one site's local aggregation of the five analyses).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import new_job, run_study
from securecalc.core.config import load_study_config
from securecalc.core.local import local_contributions
from securecalc.core.table import load_table
from securecalc_bench.analyses import FIVE, analyses_toml
from securecalc_bench.datasets import BENCH_CATALOGUE_TOML, BENCH_SCHEMA_TOML, write_sites


def top_functions(raw: Path, limit: int = 40) -> str:
    """Inclusive and self shares of py-spy's raw (collapsed) stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        total += n
        for frame in dict.fromkeys(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    lines = [f"{total} samples holding the GIL (node process and its MPC workers)", "",
             "inclusive:"]
    lines += [f"{v / total:6.1%}  {k}" for k, v in inclusive.most_common(limit)]
    lines += ["", "self:"]
    lines += [f"{v / total:6.1%}  {k}" for k, v in own.most_common(limit // 2)]
    return "\n".join(lines) + "\n"


def profile_local(paths: dict[str, Path], study: Path, out: Path) -> None:
    from pyinstrument import Profiler

    config = load_study_config(study)
    job = new_job(config)
    table = load_table(next(iter(paths.values())), config.schema, job.columns())
    local_contributions(job, table, config.engine)  # warm-up
    profiler = Profiler(interval=0.0005)
    profiler.start()
    local_contributions(job, table, config.engine)
    profiler.stop()
    (out / "local.txt").write_text(profiler.output_text(unicode=False, color=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("mpc", "ckks"), default="mpc")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/profile")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="securecalc-profile-") as tmp:
        work = Path(tmp)
        paths = write_sites(work / "data", sites=3, rows=args.rows)
        # ckks = "exact": profiled CKKS runs are exact (synthetic data only)
        with LocalCluster.start(work / "cluster", paths, ckks="exact",
                                catalogue=BENCH_CATALOGUE_TOML) as cluster:
            study = cluster.study("profile", args.engine, BENCH_SCHEMA_TOML,
                                  analyses_toml(FIVE.ids), extra_study="timeout_seconds = 600\n")
            config = load_study_config(study)
            run_study(config)  # nodes load their data
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            raw = work / f"pyspy-node-{args.engine}.raw"
            node = cluster.servers.servers[next(iter(paths))].process.pid
            recorder = subprocess.Popen(
                [spy, "record", "--subprocesses", "--gil", "-r", "250", "-f", "raw", "-o",
                 str(raw), "--pid", str(node)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            runs = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = run_study(config)
                runs.append({"seconds": time.perf_counter() - started, "phases": result.phases,
                             "analyses": {k: r.cost.to_json() for k, r in
                                          result.results.items()}})
            time.sleep(0.5)
            recorder.send_signal(2)
            recorder.wait(60)
            (out / f"phases-{args.engine}.json").write_text(json.dumps(runs, indent=1) + "\n")
            if raw.exists():
                (out / f"pyspy-node-{args.engine}.txt").write_text(top_functions(raw))
            profile_local(paths, study, out)
    print(f"profiles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
