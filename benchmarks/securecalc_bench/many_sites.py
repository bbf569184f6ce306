"""CKKS with many sites in one process: mean and variance at 200 sites over the in-memory
transport (real TenSEAL, the roles' own code; no sockets), beside numpy on the pooled rows.

200 node processes do not fit one development machine (about 290 MB each), so the sites run
as objects of this process (:class:`~securecalc.transport.memory.MemoryNetwork`); what this
measures is the engine and the roles at that scale, not a network.

    python -m securecalc_bench.many_sites [--sites 200] [--rows 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from securecalc.audit.events import open_log
from securecalc.compute.aggregator import Aggregator
from securecalc.compute.open_jobs import ComputeJobs
from securecalc.coordinator.study import run_study
from securecalc.core.config import load_node_config, load_study_config
from securecalc.core.defaults import COMPUTE
from securecalc.core.table import load_table
from securecalc.roles import Role
from securecalc.studyfolder import node_toml, study_toml, write
from securecalc.synth import site_names, synth_schema, write_cohort
from securecalc.transport.memory import COORDINATOR, MemoryNetwork

NO_PKI = Path("/nonexistent-pki")  # in-process parties run without TLS
SCHEMA_TOML = '[schema.bmi]\ntype = "float"\nmin = 15\nmax = 60\n'
ANALYSES_TOML = ('[[analysis]]\nid = "bmi_mean"\nkind = "mean"\ncolumn = "bmi"\n\n'
                 '[[analysis]]\nid = "bmi_variance"\nkind = "variance"\ncolumn = "bmi"\n')


def measure(root: Path, sites: int, rows: int) -> dict[str, Any]:
    names = site_names(sites)
    paths = write_cohort(root / "data", sites=sites, rows=rows)
    network = MemoryNetwork()
    addresses = {name: f"127.0.0.1:{10000 + i}" for i, name in enumerate(names)}
    started = time.perf_counter()
    for name, path in zip(names, paths, strict=True):
        text = node_toml(name, addresses[name], path, NO_PKI, names)
        config = write(root / f"{name}.toml", text + '\n[policy]\nckks = "exact"\n')
        network.add_node(load_node_config(config, insecure=True), Role.HOSPITAL)
    audit = open_log(root / "audit" / f"{COMPUTE}.jsonl", COMPUTE, key=None, cert=None)
    network.add_compute(COMPUTE, Aggregator(ComputeJobs(), audit,
                                            coordinators=("coordinator",), insecure=True))
    opened = time.perf_counter() - started
    text = study_toml("many-sites", "ckks", list(addresses.items()), NO_PKI, SCHEMA_TOML,
                      ANALYSES_TOML, compute=(COMPUTE, "127.0.0.1:9999"))
    text += f'\n[audit]\nlog = "{root / "audit" / "coordinator.jsonl"}"\n'
    study = load_study_config(write(root / "study.toml", text), insecure=True)
    started = time.perf_counter()
    result = run_study(study, connect=lambda tls, clock: network.connect(
        tls, clock, caller=COORDINATOR))
    seconds = time.perf_counter() - started
    pooled = np.concatenate([load_table(p, synth_schema(), ["bmi"]).column("bmi").values
                             for p in paths])
    bmi = pooled[~np.isnan(pooled)]
    mean = float(result.results["bmi_mean"].value)
    variance = float(result.results["bmi_variance"].value)
    return {"sites": sites, "rows_per_site": rows, "nodes_opened_seconds": opened,
            "study_seconds": seconds, "bytes_sent": result.cost.bytes_sent,
            "ciphertexts": result.cost.ciphertexts, "phases": result.phases,
            "mean": mean, "numpy_mean": float(bmi.mean()),
            "variance": variance, "numpy_variance": float(bmi.var(ddof=1)),
            "mean_rel_error": abs(mean - bmi.mean()) / abs(bmi.mean()),
            "variance_rel_error": abs(variance - bmi.var(ddof=1)) / bmi.var(ddof=1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecalc_bench.many_sites")
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="securecalc-many-sites-") as tmp:
        record = measure(Path(tmp), args.sites, args.rows)
    print(json.dumps(record, indent=1))
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
