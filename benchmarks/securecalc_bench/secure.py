"""Secure cells: studies run by the real coordinator against real node processes.

A :class:`BenchCluster` starts one :class:`~securecalc.cluster.LocalCluster` for a
:class:`~securecalc_bench.matrix.Group` (a fresh CA, mutual TLS on loopback, injected latency
through the environment of the nodes and the compute node, which then delay every call they
answer and every MPC frame they send: see :mod:`securecalc_bench.latency`) and runs its MPC and CKKS
cells. Each cell runs its study
once to warm the nodes' data caches (that "cold" run loads the data and is reported apart),
then ``reps`` times; the figures are medians over the repetitions. Node peak memory is reset
before each run and read after it; MPC workers are sampled while it runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securecalc.cluster import LocalCluster
from securecalc.core.results import StudyResult
from securecalc.synth import site_names
from securecalc_bench.analyses import ALL, analyses_toml, missing_kinds, runnable_ids
from securecalc_bench.datasets import BENCH_CATALOGUE_TOML, BENCH_SCHEMA_TOML, write_sites
from securecalc_bench.load import ForeignLoad
from securecalc_bench.matrix import Cell, Group
from securecalc_bench.memory import ChildSampler, peak_mb, reset_peak

STUDY_SETTINGS = "timeout_seconds = 1800\npeer_timeout_seconds = 120\n"
SECURE_PHASES = {"mpc": ("secure",), "ckks": ("keys", "encrypt", "transfer", "fetch", "decrypt")}


@dataclass
class Run:
    result: StudyResult
    seconds: float  # end to end, as the caller of run_study sees it (includes what the
    # coordinator does besides the engine, such as exchanging audit-log heads)
    memory: dict[str, float | None]


class BenchCluster:
    """Node processes (and a compute node) for one group of cells."""

    def __init__(self, group: Group, work: Path):
        from securecalc_bench.latency import LATENCY_ENV

        self.group = group
        self.paths = write_sites(work / "data" / f"rows-{group.rows}", sites=group.sites,
                                 rows=group.rows)
        env = {LATENCY_ENV: str(group.latency_ms)} if group.latency_ms else None
        started = time.perf_counter()
        # ckks = "exact": the benchmarks measure exact CKKS runs, whose pooled totals the
        # coordinator decrypts before any gate (synthetic data only)
        self.cluster = LocalCluster.start(work / "clusters" / group.name, self.paths,
                                          with_compute=group.with_compute, env=env,
                                          ckks="exact", catalogue=BENCH_CATALOGUE_TOML)
        self.start_seconds = time.perf_counter() - started

    def close(self) -> None:
        self.cluster.stop()

    def _pids(self, names: list[str]) -> list[int]:
        servers = self.cluster.servers.servers
        return [servers[n].process.pid for n in names if n in servers]

    def _run_once(self, config: Any, parties: list[str]) -> Run:
        from securecalc.coordinator.study import run_study

        nodes = self._pids(parties)
        compute = self._pids(["compute"])
        for pid in (*nodes, *compute, "self"):
            reset_peak(pid)
        with ChildSampler(nodes if config.engine == "mpc" else []) as sampler:
            started = time.perf_counter()
            result = run_study(config)
            seconds = time.perf_counter() - started
        node_peaks = [m for m in (peak_mb(p) for p in nodes) if m is not None]
        return Run(result, seconds, {
            "node_max_mb": max(node_peaks, default=None),
            "worker_max_mb": sampler.peak,
            "compute_mb": peak_mb(compute[0]) if compute else None,
            "coordinator_mb": peak_mb("self")})

    def run_cell(self, cell: Cell, reps: int,
                 score: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Measure ``cell``; ``score`` maps released values by id to error figures."""
        from securecalc.core.config import load_study_config

        analysis = ALL[cell.analysis]
        record = base_record(cell)
        ids = runnable_ids(analysis, cell.engine)
        missing = missing_kinds(analysis, cell.engine)
        if not ids:
            return {**record, "status": "not available",
                    "note": f"kinds not registered: {', '.join(missing)}"}
        parties = site_names(cell.parties)
        name = f"{cell.analysis}-{cell.engine}-p{cell.parties}"
        path = self.cluster.study(name, cell.engine, BENCH_SCHEMA_TOML, analyses_toml(ids),
                                  parties=parties, extra_study=STUDY_SETTINGS)
        config = load_study_config(path)
        cold = self._run_once(config, parties)
        with ForeignLoad(self._pids([*parties, "compute"])) as load:
            runs = [self._run_once(config, parties) for _ in range(reps)]
        record.update(summarise(cell, runs, cold))
        record["foreign_cores"] = load.cores
        record["ids"] = list(ids)
        if missing:
            record["note"] = f"partial: kinds not registered: {', '.join(missing)}"
        values = {aid: r.value for aid, r in runs[-1].result.results.items()}
        errors = score(values)
        for aid, err in errors.items():
            record["analyses"][aid].update(err)
        finite = [e["rel_error"] for e in errors.values() if e.get("rel_error") is not None]
        record["rel_error"] = max(finite) if finite else None
        return record


def base_record(cell: Cell) -> dict[str, Any]:
    return {"engine": cell.engine, "analysis": cell.analysis, "parties": cell.parties,
            "rows": cell.rows, "latency_ms": cell.latency_ms, "sweeps": list(cell.sweeps),
            "status": "ok", "note": ""}


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def phases_of(engine: str, raw: dict[str, float]) -> dict[str, float]:
    """Non-overlapping phases. CKKS's ``submit`` (coordinator side) contains the sites'
    ``local`` and ``encrypt``; what remains of it is ``transfer`` (sending and adding)."""
    if engine != "ckks":
        return dict(raw)
    out = {k: raw.get(k, 0.0) for k in ("keys", "local", "encrypt")}
    out["transfer"] = max(0.0, raw.get("submit", 0.0) - out["local"] - out["encrypt"])
    out.update({k: raw.get(k, 0.0) for k in ("fetch", "decrypt", "finishing")})
    return out


def summarise(cell: Cell, runs: list[Run], cold: Run) -> dict[str, Any]:
    """Medians over the repetitions of everything a run reports."""
    last = runs[-1].result
    each = [phases_of(cell.engine, r.result.phases) for r in runs]
    phases = {k: _median([p.get(k, 0.0) for p in each]) for k in each[-1]}
    seconds = _median([r.seconds for r in runs])
    phases["other"] = max(0.0, seconds - sum(phases.values()))
    secure = sum(phases.get(k, 0.0) for k in SECURE_PHASES[cell.engine])
    secure_min = min(sum(p.get(k, 0.0) for k in SECURE_PHASES[cell.engine]) for p in each)
    analyses: dict[str, dict[str, Any]] = {}
    for aid, r in last.results.items():
        analyses[aid] = {"kind": r.kind, "n": r.n,
                         "seconds": _median([x.result.results[aid].cost.seconds for x in runs]),
                         "bytes_sent": r.cost.bytes_sent, "rounds": r.cost.rounds,
                         "ciphertexts": r.cost.ciphertexts}
    memory = {k: max((r.memory[k] for r in runs if r.memory[k] is not None), default=None)
              for k in runs[0].memory}
    bytes_sent = last.cost.bytes_sent
    return {
        "reps": len(runs), "seconds": seconds,
        "engine_seconds": _median([r.result.cost.seconds for r in runs]),
        "seconds_min": min(r.seconds for r in runs), "seconds_max": max(r.seconds for r in runs),
        "cold_seconds": cold.seconds, "cold_local": cold.result.phases.get("local"),
        "phases": phases, "secure_seconds": secure, "secure_seconds_min": secure_min,
        "phases_raw": {k: _median([r.result.phases.get(k, 0.0) for r in runs])
                       for k in last.phases},
        "rounds": last.cost.rounds, "ciphertexts": last.cost.ciphertexts,
        "bytes_sent": bytes_sent, "bytes_per_party": bytes_sent / cell.parties,
        "memory": memory, "analyses": analyses,
    }


__all__ = ["BenchCluster", "base_record", "summarise"]
