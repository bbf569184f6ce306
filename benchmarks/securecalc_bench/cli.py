"""Command-line arguments of ``securecalc bench`` (imports nothing heavy)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from securecalc_bench.matrix import BenchPlan

SWEEPS = ("rows", "parties", "latency", "target", "five")
#: sweeps outside the cell matrix, run only when named in --only
SEPARATE = ("sources",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a small matrix that finishes in under 2 minutes (CI smoke test)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for JSON, CSV, plots and the Markdown summary")
    parser.add_argument("--work", default=None,
                        help="keep generated data, cluster files and logs here (default: a "
                             "temporary folder; an existing folder's data files are reused)")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per cell (default: 3, quick: 1)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sweeps to run ({', '.join(SWEEPS)}); "
                             "baselines still run; 'sources' (node local phase on Parquet "
                             "and PostgreSQL, 10^6 to 10^8 rows) runs only when named")


def _select(plan: BenchPlan, only: str | None) -> BenchPlan:
    """The plan restricted to the cells of the named sweeps."""
    from dataclasses import replace

    from securecalc.errors import ConfigError
    from securecalc_bench.matrix import Group

    if not only:
        return plan
    wanted = {s.strip() for s in only.split(",") if s.strip()}
    unknown = wanted - set(SWEEPS) - set(SEPARATE)
    if unknown:
        raise ConfigError(f"--only: unknown sweeps {', '.join(sorted(unknown))} "
                          f"(known: {', '.join((*SWEEPS, *SEPARATE))})")
    groups: list[Group] = []
    for group in plan.groups:
        cells = tuple(c for c in group.cells if wanted & set(c.sweeps))
        if cells:
            groups.append(replace(group, cells=cells))
    return replace(plan, groups=tuple(groups))


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    from securecalc_bench.matrix import full_plan, quick_plan
    from securecalc_bench.runner import Bench, write_outputs

    # SIGTERM unwinds like Ctrl-C, so every node process started is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if _run_separate(args):
        return 0
    plan = _select(quick_plan() if args.quick else full_plan(), args.only)
    if args.reps is not None:
        plan = replace(plan, reps=max(1, args.reps))
    out = Path(args.out)
    print(f"securecalc bench: {plan.name} plan, {len(plan.cells())} cells, "
          f"{plan.reps} repetition(s) each; results in {out}", file=sys.stderr, flush=True)
    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        results = Bench(plan, work).run()
    else:
        with tempfile.TemporaryDirectory(prefix="securecalc-bench-") as tmp:
            results = Bench(plan, Path(tmp)).run()
    for path in write_outputs(results, out):
        print(path)
    missed = [t["id"] for t in results["targets"] if t["verdict"] == "missed"]
    print(f"securecalc bench: done in {results['meta']['duration_seconds']:.0f} s; "
          f"targets missed: {', '.join(missed) or 'none'}", file=sys.stderr)
    return 0


def _run_separate(args: argparse.Namespace) -> bool:
    """Run the separate sweeps named in ``--only``; True when nothing else was named."""
    from pathlib import Path

    wanted = {s.strip() for s in (args.only or "").split(",") if s.strip()}
    if "sources" in wanted:
        from securecalc_bench import sources_sweep

        work = Path(args.work) if args.work else None
        for path in sources_sweep.run_in(Path(args.out), work, quick=args.quick,
                                         reps=args.reps):
            print(path)
    return bool(wanted) and wanted <= set(SEPARATE)
