"""CPU against rounds of the quantile search: fan-out 22 (3 iterations for 10**4 grid points)
against 100 (2 iterations), at 3 and 10 parties, on the engine with real MPyC workers
(in-process relay, no network): seconds, rounds and bytes per party.

    python -m securecalc_bench.search_fanout [--values 20000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from securecalc.engines.mpc import MpcJob, SearchStep, run_local

POINTS = 10**4
PROBS = (0.1, 0.25, 0.5, 0.75, 0.9)


def measure(parties: int, arity: int, values: int) -> dict[str, Any]:
    rng = np.random.default_rng([parties, arity])
    names = tuple(f"hospital-{i}" for i in range(parties))
    indices = [np.sort(rng.integers(0, POINTS, values)).astype(np.int64)
               for _ in range(parties)]
    jobs = [MpcJob(f"fanout-{parties}-{arity}", p, names,
                   (SearchStep("q", indices[p], POINTS, PROBS, arity, min_n=10),))
            for p in range(parties)]
    started = time.perf_counter()
    results = run_local(jobs, timeout=600)
    seconds = time.perf_counter() - started
    pooled = np.concatenate(indices)
    want = [int(v) for v in np.quantile(pooled, PROBS, method="inverted_cdf")]
    got = [int(t) for t in results[0].steps[0].totals[1:]]
    return {"parties": parties, "arity": arity, "values_per_party": values,
            "seconds": seconds, "rounds": results[0].rounds,
            "bytes_per_party": results[0].bytes_sent, "exact": got == want}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.search_fanout")
    parser.add_argument("--values", type=int, default=20_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    records = []
    for parties in (3, 10):
        for arity in (22, 100):
            records.append(measure(parties, arity, args.values))
            r = records[-1]
            print(f"{parties:>3} parties, fan-out {arity:>3}: {r['seconds']:.2f} s, "
                  f"{r['rounds']} rounds, {r['bytes_per_party']} bytes/party, "
                  f"exact {r['exact']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
