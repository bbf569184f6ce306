"""Running a bench plan end to end: cells, baselines, CKKS figures, targets, outputs."""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from securecalc_bench import baseline_ckks, baseline_mpc, output, plots, targets
from securecalc_bench.analyses import ALL, FIVE, MATRIX_ANALYSES, TABLES, runnable_ids
from securecalc_bench.load import QUIET_CORES, wait_quiet
from securecalc_bench.matrix import ROWS, BenchPlan, Cell, Group
from securecalc_bench.plaintext import PlainRunner
from securecalc_bench.secure import BenchCluster, base_record

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, loopback"


def revision() -> str:
    """``git describe --always --dirty`` of the working tree, or "unknown"."""
    import subprocess

    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).resolve().parents[2])
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = [f"Python {platform.python_version()}"]
    for name in ("numpy", "mpyc", "tenseal", "grpcio"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def describe(cell: Cell, record: dict[str, Any]) -> str:
    where = f"p={cell.parties:<2} rows={cell.rows:<7} lat={cell.latency_ms}ms"
    head = f"{cell.engine:<5} {cell.analysis:<12} {where}"
    if record["status"] != "ok":
        return f"{head}  {record['status']}: {record['note']}"
    extra = ""
    if cell.engine == "mpc":
        extra = f", secure {record['secure_seconds']:.3g} s, {record['rounds']} rounds"
    elif cell.engine == "ckks":
        extra = f", {record['ciphertexts']} ciphertexts"
    err = record.get("rel_error")
    err_text = f", err {err:.1e}" if err is not None else ""
    load = record.get("foreign_cores")
    load_text = f", others used {load:.1f} cores" if load is not None and load >= 0.3 else ""
    return f"{head}  {record['seconds']:.3g} s{extra}{err_text}{load_text}"


class Bench:
    def __init__(self, plan: BenchPlan, work: Path, progress: Progress = _stderr):
        self.plan, self.work, self.progress = plan, work, progress
        self.plain = PlainRunner(work)
        self.cells: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []
        self.done = 0
        self.total = len(plan.cells())

    def _quiet(self) -> dict[str, Any]:
        """Wait for other processes to quieten (full runs); what was seen and waited."""
        if self.plan.quiet_wait <= 0:
            return {}
        cores, waited = wait_quiet(self.plan.quiet_wait)
        return {"foreign_before": cores, "waited_s": waited}

    def _emit(self, cell: Cell, record: dict[str, Any]) -> None:
        self.done += 1
        self.cells.append(record)
        self.progress(f"[{self.done:>3}/{self.total}] {describe(cell, record)}")

    def _failed(self, cell: Cell, exc: BaseException) -> dict[str, Any]:
        note = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        (self.work / "errors.log").open("a").write(
            f"{cell}\n{''.join(traceback.format_exception(exc))}\n")
        return {**base_record(cell), "status": "error", "note": note}

    def run_group(self, group: Group) -> None:
        for cell in (c for c in group.cells if c.engine == "plain"):
            quiet = self._quiet()
            try:
                record = {**self.plain.run_cell(cell, self.plan.reps), **quiet}
            except Exception as exc:  # noqa: BLE001 - a failed cell must not end the run
                record = self._failed(cell, exc)
            self._emit(cell, record)
        secure = [c for c in group.cells if c.engine != "plain"]
        if not secure:
            return
        try:
            cluster = BenchCluster(group, self.work)
        except Exception as exc:  # noqa: BLE001
            for cell in secure:
                self._emit(cell, self._failed(cell, exc))
            return
        self.clusters.append({"group": group.name, "sites": group.sites,
                              "seconds": cluster.start_seconds})
        self.progress(f"      cluster {group.name}: {group.sites} nodes started in "
                      f"{cluster.start_seconds:.1f} s")
        try:
            for cell in secure:
                quiet = self._quiet()
                try:
                    record = {**cluster.run_cell(cell, self.plan.reps,
                                                 self.plain.scorer(cell.rows, cell.parties)),
                              **quiet}
                except Exception as exc:  # noqa: BLE001
                    record = self._failed(cell, exc)
                self._emit(cell, record)
        finally:
            cluster.close()

    def naive_mpc(self) -> dict[str, Any]:
        points = baseline_mpc.measure(self.plan.naive, progress=self.progress)
        estimates = []
        for name in [a.name for a in MATRIX_ANALYSES] + ["mvm"]:
            for rows in ROWS:
                est = baseline_mpc.estimate(points, name, rows)
                if est is not None:
                    estimates.append(est)
        return {"points": baseline_mpc.points_json(points), "estimates": estimates,
                "engine_rounds": baseline_mpc.gate_rounds()}

    def naive_ckks(self) -> dict[str, Any]:
        per_value = baseline_ckks.naive(self.plan.naive_ckks_values)
        estimates = []
        for analysis in MATRIX_ANALYSES:
            for rows in ROWS:
                est = baseline_ckks.naive_estimate(per_value, rows=rows,
                                                   columns=len(analysis.columns), sites=3)
                estimates.append({"analysis": analysis.name, "rows_per_party": rows, **est})
        return {"per_value": per_value, "estimates": estimates}

    def ckks(self) -> dict[str, Any]:
        micro = baseline_ckks.micro(self.plan.micro_adds)
        return {"micro": micro,
                "layouts": baseline_ckks.layouts(ckks_widths(), micro["slots"])}

    def study_rounds(self) -> dict[str, Any]:
        from securecalc_bench import study_rounds

        if not self.plan.study_rows:
            return {"skipped": True}
        rows = self.plan.study_rows
        return {"studies": study_rounds.measure(self.work / "study-rounds", demo_rows=rows,
                                                bench_rows=rows)}

    def startup(self) -> dict[str, Any]:
        from securecalc_bench import startup

        if not self.plan.startup_rows:
            return {"skipped": True}
        return startup.measure(self.work / "startup", rows=self.plan.startup_rows,
                               reps=self.plan.startup_reps)

    def run(self) -> dict[str, Any]:
        started, wall = datetime.now(UTC), time.perf_counter()
        for group in self.plan.groups:
            self.run_group(group)
        extras: dict[str, Any] = {}
        for key, fn in (("naive_mpc", self.naive_mpc), ("naive_ckks", self.naive_ckks),
                        ("ckks", self.ckks), ("study_rounds", self.study_rounds),
                        ("startup", self.startup)):
            self.progress(f"      {key.replace('_', ' ')} ...")
            quiet = self._quiet()
            try:
                extras[key] = {**fn(), **quiet}
            except Exception as exc:  # noqa: BLE001
                extras[key] = {"error": f"{type(exc).__name__}: {exc}"}
                self.progress(f"      {key} failed: {exc}")
        results: dict[str, Any] = {
            "meta": {"started": started.isoformat(timespec="seconds"),
                     "duration_seconds": time.perf_counter() - wall,
                     "machine": machine(), "versions": versions(), "revision": revision(),
                     "quiet_cores": QUIET_CORES if self.plan.quiet_wait > 0 else None,
                     "kinds_registered": sorted(_kinds())},
            "plan": {"name": self.plan.name, "reps": self.plan.reps,
                     "base_rows": self.plan.base_rows, "notes": list(self.plan.notes),
                     "matrix_analyses": [a.name for a in MATRIX_ANALYSES],
                     "analyses": {a.name: {"label": a.label, "ids": list(a.ids)}
                                  for a in ALL.values()},
                     "tables": TABLES},
            "cells": self.cells, "clusters": self.clusters, **extras}
        results["targets"] = targets.evaluate(results)
        results["meta"]["duration_seconds"] = time.perf_counter() - wall
        return results


def _kinds() -> list[str]:
    from securecalc.core.kinds import KINDS

    return list(KINDS)


def ckks_widths() -> dict[str, int]:
    """Values per site each bench analysis packs under CKKS (first round), by analysis."""
    from securecalc.core.kinds import StudyOptions, kind_of
    from securecalc.core.study_model import analysis_from_mapping
    from securecalc.engines.ckks.adapter import initial_state, sum_form
    from securecalc_bench.datasets import bench_schema

    schema, options = bench_schema(), StudyOptions()
    widths: dict[str, int] = {}
    for bench in (*MATRIX_ANALYSES, FIVE):
        total = 0
        ids = runnable_ids(bench, "ckks")
        for aid in ids:
            analysis = analysis_from_mapping({"id": aid, **TABLES[aid]}, index=0, schema=schema)
            plan = kind_of(analysis.kind).plan(analysis, schema, "ckks", options)
            total += sum_form(plan, initial_state(plan)).width
        if ids:
            widths[bench.name] = total
    return widths


def write_outputs(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "cells.csv", out / "summary.md"]
    output.write_json(paths[0], results)
    output.write_csv(paths[1], results["cells"])
    paths[2].write_text(output.summary(results))
    return paths + plots.write_all(out, results)


__all__ = ["Bench", "ckks_widths", "write_outputs"]
