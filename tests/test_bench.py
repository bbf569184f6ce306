"""``securecalc bench --quick`` as CI runs it: every output exists and parses (no timings)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from securecalc_bench.compare import aligned, relative_error
from securecalc_bench.extrapolate import fit
from securecalc_bench.matrix import LATENCIES_MS, full_plan, quick_plan
from securecalc_bench.output import CSV_FIELDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(180)
def test_quick_bench_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "securecalc", "bench", "--quick", "--out", str(out),
                          "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=170)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[  1/" in run.stderr  # one progress line per cell

    results = json.loads((out / "results.json").read_text())
    cells = results["cells"]
    assert cells and {c["engine"] for c in cells} == {"plain", "mpc", "ckks"}
    assert all(c["status"] in ("ok", "not available") for c in cells), \
        [(c["engine"], c["analysis"], c["note"]) for c in cells if c["status"] == "error"]
    delayed = {c["engine"] for c in cells if c["latency_ms"] > 0 and c["status"] == "ok"}
    assert delayed == {"mpc", "ckks"}
    moments = [c for c in cells if c["analysis"] == "moments" and c["status"] == "ok"]
    for cell in moments:
        assert cell["seconds"] > 0
        if cell["engine"] != "plain":
            assert cell["rel_error"] is not None and cell["rel_error"] < 1e-6
    assert results["naive_mpc"]["points"] and results["naive_ckks"]["per_value"]
    assert results["ckks"]["micro"]["ciphertext_bytes"] > 0
    assert {t["verdict"] for t in results["targets"]} <= {"met", "missed", "not measured"}

    with (out / "cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(cells) and list(rows[0]) == list(CSV_FIELDS)
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# securecalc bench") and "## Targets" in summary
    for name in ("time_vs_rows", "time_vs_parties", "time_vs_latency", "phases"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_compare_aligns_nested_values() -> None:
    value = {"table": {"a": {"x": 10, "y": 20}}, "chi2": {"statistic": 3.0, "p_value": 0.5}}
    ref = {"table": [[10, 21]], "chi2": {"statistic": 3.3, "p_value": 1e-9}}
    assert aligned(value, ref) == 3  # p-values are not compared
    assert relative_error(value, ref) == pytest.approx(0.3 / 3.3)
    assert relative_error({"a": 1}, [1, 2]) is None


def test_fit_recovers_a_linear_cost() -> None:
    f = fit("linear", [10, 20, 40], [1.5, 2.5, 4.5])
    assert f.predict(1000) == pytest.approx(100.5)


def test_latency_sweep_covers_both_secure_engines() -> None:
    full = full_plan()
    swept = {(c.engine, c.latency_ms) for c in full.cells() if "latency" in c.sweeps}
    assert swept == {(e, ms) for e in ("mpc", "ckks") for ms in LATENCIES_MS}
    for plan in (full, quick_plan()):
        assert all(g.with_compute for g in plan.groups if any(c.engine == "ckks"
                                                              for c in g.cells))
    quick = {(c.engine, c.latency_ms) for c in quick_plan().cells() if "latency" in c.sweeps}
    assert quick == {(e, ms) for e in ("mpc", "ckks") for ms in LATENCIES_MS[:2]}


@pytest.mark.timeout(60)
def test_without_the_development_tools_bench_says_how_to_install_them() -> None:
    code = ("import sys; sys.modules['securecalc_bench'] = None; "
            "from securecalc.cli import main; "
            "sys.exit(main(['bench', '--quick', '--out', '/nonexistent']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "securecalc: error: securecalc bench needs the development tools: "
        "pip install -e benchmarks/ (or make .venv/.installed)")
    assert not Path("/nonexistent").exists()
