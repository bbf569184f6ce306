"""Plain cells (pooled numpy, timed) and the reference values every secure cell is scored on.

A plain cell loads every site's file with the project's validating loader ("load") and runs
the analyses with numpy on the pooled arrays ("compute", median over the repetitions). Its
values are cached per (rows, parties, analysis id) as the reference; a secure cell whose data
has no plain cell gets its reference computed untimed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from securecalc_bench.analyses import ALL, TABLES
from securecalc_bench.compare import aligned, relative_error
from securecalc_bench.datasets import bench_schema, write_sites
from securecalc_bench.load import ForeignLoad
from securecalc_bench.matrix import Cell
from securecalc_bench.memory import peak_mb, reset_peak
from securecalc_bench.reference import columns_of, compute, load_pooled
from securecalc_bench.secure import base_record

Key = tuple[int, int, str]


class PlainRunner:
    def __init__(self, work: Path):
        self.work = work
        self.schema = bench_schema()
        self.values: dict[Key, Any] = {}
        self._warm = False

    def _paths(self, rows: int, parties: int) -> list[Path]:
        paths = write_sites(self.work / "data" / f"rows-{rows}", sites=parties, rows=rows)
        return list(paths.values())

    def run_cell(self, cell: Cell, reps: int) -> dict[str, Any]:
        ids = ALL[cell.analysis].ids
        paths = self._paths(cell.rows, cell.parties)
        if not self._warm:  # first-use costs of the loader (imports, Arrow pools): untimed
            load_pooled(paths[:1], self.schema, columns_of(ids))
            self._warm = True
        reset_peak("self")
        started = time.perf_counter()
        data = load_pooled(paths, self.schema, columns_of(ids))
        load = time.perf_counter() - started
        compute(ids, data)  # untimed warm-up: first-call imports and caches
        times = []
        with ForeignLoad([]) as foreign:
            for _ in range(max(1, reps)):
                started = time.perf_counter()
                values = compute(ids, data)
                times.append(time.perf_counter() - started)
        memory = peak_mb("self")
        del data
        for aid, value in values.items():
            self.values[(cell.rows, cell.parties, aid)] = value
        seconds = float(statistics.median(times))
        return {**base_record(cell), "reps": len(times), "seconds": seconds,
                "seconds_min": min(times), "seconds_max": max(times),
                "cold_seconds": load + times[0], "phases": {"load": load, "compute": seconds},
                "secure_seconds": 0.0, "memory": {"coordinator_mb": memory},
                "foreign_cores": foreign.cores,
                "ids": list(ids), "analyses": {aid: {"kind": TABLES[aid]["kind"]} for aid in ids}}

    def reference(self, rows: int, parties: int, ids: Sequence[str]) -> dict[str, Any]:
        todo = [aid for aid in ids if (rows, parties, aid) not in self.values]
        if todo:
            data = load_pooled(self._paths(rows, parties), self.schema, columns_of(todo))
            for aid, value in compute(todo, data).items():
                self.values[(rows, parties, aid)] = value
        return {aid: self.values[(rows, parties, aid)] for aid in ids}

    def scorer(self, rows: int, parties: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Error figures of released values (by id) against this data's reference."""

        def score(values: dict[str, Any]) -> dict[str, Any]:
            refs = self.reference(rows, parties, list(values))
            out = {}
            for aid, value in values.items():
                compared = aligned(value, refs[aid])
                if compared:
                    out[aid] = {"rel_error": relative_error(value, refs[aid]),
                                "error_basis": "numpy", "compared": compared}
                else:
                    out[aid] = self._replay_error(rows, parties, aid, value)
            return out

        return score

    def _replay_error(self, rows: int, parties: int, aid: str, value: Any) -> dict[str, Any]:
        """Compare with the kind's own finish on exact plaintext totals (same structure)."""
        from securecalc.core.analyses import analysis_from_mapping
        from securecalc.core.table import load_table
        from securecalc_bench.replay import plain_value

        try:
            analysis = analysis_from_mapping({"id": aid, **TABLES[aid]}, index=0,
                                             schema=self.schema)
            tables = [load_table(p, self.schema, analysis.columns)
                      for p in self._paths(rows, parties)]
            exact, _ = plain_value(analysis, self.schema, tables)
        except Exception as exc:  # noqa: BLE001 - a new kind may not fit; report, go on
            return {"rel_error": None, "error_basis": f"none ({type(exc).__name__})"}
        compared = aligned(value, exact)
        return {"rel_error": relative_error(value, exact) if compared else None,
                "error_basis": "exact plaintext totals, kind's finish", "compared": compared}


__all__ = ["PlainRunner"]
