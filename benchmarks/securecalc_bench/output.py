"""Writing a run's results: results.json (everything), cells.csv (one row per cell) and
summary.md (the tables BENCHMARKS.md quotes)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Record = dict[str, Any]
PHASES = ("local", "load", "compute", "keys", "setup", "encrypt", "secure", "transfer", "fetch",
          "decrypt", "finishing", "other")
MEMORY = ("node_max_mb", "worker_max_mb", "compute_mb", "coordinator_mb")
BUSY_CORES = 0.3
CSV_FIELDS = ("engine", "analysis", "parties", "rows", "latency_ms", "sweeps", "status", "reps",
              "seconds", "seconds_min", "seconds_max", "engine_seconds", "cold_seconds",
              "secure_seconds",
              *(f"phase_{p}" for p in PHASES), "rounds", "ciphertexts", "bytes_sent",
              "bytes_per_party", *MEMORY, "rel_error", "foreign_cores", "waited_s", "note")


def _clean(value: Any) -> Any:
    """JSON-safe: no NaN/inf, no numpy scalars, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, results: Record) -> None:
    path.write_text(json.dumps(_clean(results), indent=1) + "\n")


def csv_row(cell: Record) -> dict[str, Any]:
    row = {k: cell.get(k, "") for k in CSV_FIELDS}
    row["sweeps"] = "+".join(cell.get("sweeps", []))
    for phase in PHASES:
        row[f"phase_{phase}"] = cell.get("phases", {}).get(phase, "")
    for key in MEMORY:
        row[key] = (cell.get("memory") or {}).get(key, "")
    return {k: ("" if v is None else v) for k, v in row.items()}


def write_csv(path: Path, cells: Iterable[Record]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for cell in cells:
            writer.writerow(csv_row(cell))


# ------------------------------------------------------------------------------ Markdown

def _s(x: Any) -> str:
    """Seconds, compactly."""
    if x is None or x == "":
        return "-"
    x = float(x)
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _bytes(x: Any) -> str:
    if x is None or x == "":
        return "-"
    x = float(x)
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.0f} B"


def _mb(x: Any) -> str:
    return "-" if x is None or x == "" else f"{float(x):.0f}"


def _err(x: Any) -> str:
    return "-" if x is None else f"{x:.1e}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _count(cell: Record) -> str:
    if cell["engine"] == "mpc":
        return f"{cell.get('rounds', '-')} r"
    if cell["engine"] == "ckks":
        return f"{cell.get('ciphertexts', '-')} ct"
    return "-"


def _phase_text(cell: Record) -> str:
    phases = cell.get("phases", {})
    return " / ".join(f"{k} {_s(v)}" for k, v in phases.items() if v >= 0.0005) or "-"


def _time(cell: Record) -> str:
    """Seconds, starred when other processes used a noticeable share of the machine."""
    busy = cell.get("foreign_cores")
    return _s(cell["seconds"]) + ("*" if busy is not None and busy >= BUSY_CORES else "")


def cells_table(cells: Sequence[Record]) -> str:
    headers = ("analysis", "engine", "parties", "rows/site", "lat ms", "time s", "secure s",
               "phases (s)", "rounds / ct", "bytes/party", "peak MB", "worker MB", "rel.err",
               "status")
    rows = []
    for c in cells:
        mem = c.get("memory") or {}
        if c["status"] != "ok":
            rows.append((c["analysis"], c["engine"], c["parties"], c["rows"], c["latency_ms"],
                         "-", "-", "-", "-", "-", "-", "-", "-", f"{c['status']}: {c['note']}"))
            continue
        node_mb = mem.get("node_max_mb", mem.get("coordinator_mb"))
        rows.append((c["analysis"], c["engine"], c["parties"], c["rows"], c["latency_ms"],
                     _time(c), _s(c.get("secure_seconds")), _phase_text(c), _count(c),
                     _bytes(c.get("bytes_per_party")), _mb(node_mb),
                     _mb(mem.get("worker_max_mb")), _err(c.get("rel_error")),
                     c["note"] or "ok"))
    return table(headers, rows)


def _sweep(cells: Sequence[Record], name: str) -> list[Record]:
    return [c for c in cells if name in c.get("sweeps", [])]


def naive_mpc_tables(naive: Record) -> str:
    points = sorted(naive.get("points", []), key=lambda p: (p["task"], p["rows_per_party"]))
    measured = table(("task", "parties", "rows/party", "seconds", "rounds", "bytes sent"),
                     ((p["task"], p["parties"], p["rows_per_party"], _s(p["seconds"]),
                       p["rounds"], _bytes(p["bytes_sent"])) for p in points))
    est = table(("analysis", "rows/party", "naive MPyC s", "how"),
                ((e["analysis"], e["rows_per_party"],
                  ("~" if e["extrapolated"] else "") + _s(e["seconds"]),
                  "; ".join(f"{p['task']}: " + (f"extrapolated, {p['model']} fitted at "
                                                f"{p['from_rows_per_party']} rows/party"
                                                if p["extrapolated"] else "measured")
                            for p in e["parts"]))
                 for e in naive.get("estimates", [])))
    return f"Measured (3 parties, in-process workers):\n\n{measured}\n\n" \
           f"Per analysis (~ = extrapolated):\n\n{est}"


def naive_ckks_tables(naive: Record) -> str:
    per = naive.get("per_value")
    if not per:
        return "not measured"
    head = (f"Per value, measured on {per['values']} values: encrypt "
            f"{per['encrypt']['median_ms']:.3g} ms, add at the compute node "
            f"{per['add']['median_ms']:.3g} ms, {_bytes(per['ciphertext_bytes'])} per ciphertext.")
    est = table(("analysis", "rows/site", "sites", "ciphertexts/site", "bytes/site",
                 "site s", "compute node s", "~total s"),
                ((e["analysis"], e["rows_per_party"], e["sites"], e["ciphertexts_per_site"],
                  _bytes(e["bytes_per_site"]), "~" + _s(e["site_seconds"]),
                  "~" + _s(e["compute_seconds"]), "~" + _s(e["seconds"]))
                 for e in naive.get("estimates", [])))
    return f"{head}\n\nExtrapolated (linear in ciphertexts):\n\n{est}"


def ckks_section(ckks: Record) -> str:
    micro = ckks.get("micro")
    if not micro:
        return "not measured"
    lines = [
        f"- parameters: N = {micro['poly_modulus_degree']}, coefficient moduli "
        f"{micro['coeff_mod_bit_sizes']}, scale 2^{micro['scale_bits']}, "
        f"{micro['slots']} slots",
        f"- public context {_bytes(micro['public_context_bytes'])}, compute node's context "
        f"{_bytes(micro['params_context_bytes'])}, one ciphertext "
        f"{_bytes(micro['ciphertext_bytes'])}",
        f"- key generation {_s(micro['keygen_seconds'])} s; encrypt a full ciphertext "
        f"{micro['encrypt_full_ms']:.3g} ms (incl. loading the context); decrypt "
        f"{micro['decrypt_full_ms']:.3g} ms",
        f"- Accumulator.add (validation + load + add) median {micro['add']['median_ms']:.3g} ms,"
        f" p90 {micro['add']['p90_ms']:.3g} ms over {micro['add']['samples']} adds; validation "
        f"alone {micro['validate']['median_ms']:.3g} ms",
    ]
    layouts = ckks.get("layouts", {})
    packing = table(("analysis", "values/site", "ciphertexts", "slot utilisation"),
                    ((n, x["n_values"], x["ciphertexts"], f"{x['utilization']:.1%}")
                     for n, x in layouts.items()))
    return "\n".join(lines) + "\n\nPacking:\n\n" + packing


HOW_TO_READ = (
    "How to read: times are medians over the repetitions, end to end as the caller of "
    "run_study sees them, with the nodes already holding their data (the first, data-loading "
    "run of each cell is cold_seconds in the JSON/CSV); node start-up is excluded (last "
    "table). Phases: MPC local / setup / secure / finishing come from the nodes (maxima over "
    "nodes; setup can include waiting for a slower node's local phase, so they may overlap); "
    "CKKS keys / local / encrypt / transfer (sending and adding) / fetch (the sum and the "
    "compute node's audit checkpoint) / decrypt / "
    "finishing; 'other' is the rest of the wall time (MPC worker process start, RPC set-up, "
    "the coordinator's audit-log exchange). 'secure s' is the MPC secure phase, or CKKS "
    "keys+encrypt+transfer+fetch+decrypt. For plain cells 'time s' is the numpy computation "
    "on pooled in-memory rows and 'load' the reading of every site's file. Peak MB: VmHWM of "
    "the largest node (plain: the bench process); worker MB: largest MPC worker. rel.err: "
    "normwise relative error against numpy on the pooled rows (p-values excluded). Injected "
    "latency (development option SECURECALC_DEV_LATENCY_MS on every node and the compute "
    "node): one-way, on every MPC frame and on each request and response of every call a "
    "node answers (streams pipelined: once per direction). * : other "
    f"processes used >= {BUSY_CORES} cores of this shared 2-core machine during the cell.")


def side_by_side(results: Record) -> str:
    """Per analysis and rows: plain, MPC, CKKS and the naive baselines, 3 parties, 0 ms."""
    cells = [c for c in results["cells"] if c["status"] == "ok" and c["parties"] == 3
             and c["latency_ms"] == 0]
    naive_mpc = {(e["analysis"], e["rows_per_party"]): e
                 for e in results.get("naive_mpc", {}).get("estimates", [])}
    naive_ckks = {(e["analysis"], e["rows_per_party"]): e
                  for e in results.get("naive_ckks", {}).get("estimates", [])}
    rows = []
    for name in results["plan"]["matrix_analyses"]:
        for n in sorted({c["rows"] for c in cells if c["analysis"] == name}):
            got = {c["engine"]: c for c in cells if c["analysis"] == name and c["rows"] == n}
            nm, nc = naive_mpc.get((name, n)), naive_ckks.get((name, n))
            plain, mpc = got.get("plain"), got.get("mpc")
            ratio = (f"{mpc['seconds'] / plain['seconds']:,.0f}x" if plain and mpc
                     and plain["seconds"] > 0 else "-")
            rows.append((name, n, _s(plain["seconds"]) if plain else "-",
                         _s(plain["phases"]["load"]) if plain else "-",
                         _time(mpc) if mpc else "-",
                         _s(mpc["secure_seconds"]) if mpc else "-",
                         _time(got["ckks"]) if "ckks" in got else "-",
                         ("~" if nm and nm["extrapolated"] else "") + _s(nm["seconds"])
                         if nm else "-",
                         "~" + _s(nc["seconds"]) if nc else "-", ratio))
    return table(("analysis", "rows/site", "plain s", "plain load s", "MPC s", "MPC secure s",
                  "CKKS s", "naive MPyC s", "naive TenSEAL s", "MPC / plain"), rows)


def _pick(cells: Sequence[Record], **match: Any) -> Record | None:
    for c in cells:
        if c["status"] == "ok" and all(c[k] == v for k, v in match.items()):
            return c
    return None


def pivot_parties(results: Record) -> str:
    """End-to-end seconds (secure phase) by party count, base rows, 0 ms."""
    cells, rows = results["cells"], results["plan"]["base_rows"]
    columns = sorted({(c["engine"], c["parties"]) for c in cells if c["engine"] != "plain"
                      and c["rows"] == rows and c["latency_ms"] == 0
                      and c["analysis"] in results["plan"]["matrix_analyses"]})
    body = []
    for name in results["plan"]["matrix_analyses"]:
        row = [name]
        for engine, parties in columns:
            c = _pick(cells, engine=engine, analysis=name, parties=parties, rows=rows,
                      latency_ms=0)
            row.append(f"{_time(c)} ({_s(c['secure_seconds'])})" if c else "-")
        body.append(row)
    return table(["analysis", *(f"{e.upper()} {p}" for e, p in columns)], body)


def pivot_latency(results: Record, engine: str = "mpc") -> str:
    """End-to-end seconds (secure phase) of ``engine`` by injected latency, 3 parties, base
    rows; MPC also gives its rounds."""
    cells, rows = results["cells"], results["plan"]["base_rows"]
    latencies = sorted({c["latency_ms"] for c in cells if c["engine"] == engine
                        and "latency" in c.get("sweeps", [])})
    if not latencies:
        return "not measured in this run"
    body = []
    for name in results["plan"]["matrix_analyses"]:
        row, rounds = [name], "-"
        for ms in latencies:
            c = _pick(cells, engine=engine, analysis=name, parties=3, rows=rows, latency_ms=ms)
            row.append(f"{_time(c)} ({_s(c['secure_seconds'])})" if c else "-")
            rounds = str(c["rounds"]) if c else rounds
        body.append([*row, rounds] if engine == "mpc" else row)
    extra = ["rounds"] if engine == "mpc" else []
    return table(["analysis", *(f"{ms} ms" for ms in latencies), *extra], body)


def study_rounds_table(record: Record) -> str:
    """Rounds per study beside its longest analysis's and the sum over its analyses."""
    if "error" in record:
        return f"failed: {record['error']}"
    studies = record.get("studies")
    if not studies:
        return "not measured"
    return table(("study", "analyses", "rounds", "longest analysis", "sum of analyses",
                  "seconds (warm)"),
                 ((r["study"], len(r["analyses"]), r["rounds"], r["longest_analysis"],
                   r["sum_of_analyses"], _s(r["seconds"])) for r in studies))


def startup_table(record: Record) -> str:
    """Coordinator start-up: a fresh ``study run`` process's seconds outside its phases."""
    if "error" in record:
        return f"failed: {record['error']}"
    runs = record.get("runs")
    if not runs:
        return "not measured"
    return table(("rows per site", "runs", "outside the phases (median)", "wall (min)",
                  "coordinator imports"),
                 [(record["rows_per_site"], len(runs), _s(record["outside_phases_median"]),
                   _s(min(r["wall"] for r in runs)), _s(record["coordinator_import_seconds"]))])


def summary(results: Record) -> str:
    meta, cells = results["meta"], results["cells"]
    parts = [
        f"# securecalc bench: {results['plan']['name']} run",
        f"{meta['started']}, {meta['duration_seconds']:.0f} s; {meta['machine']}; "
        f"{meta['versions']}; revision {meta.get('revision', 'unknown')}",
        *(f"> {n}" for n in results["plan"]["notes"]),
        HOW_TO_READ,
        "## Targets",
        table(("target", "measured", "verdict", "detail"),
              ((t["target"], t["measured"], t["verdict"], t["detail"])
               for t in results["targets"])),
    ]
    parts += ["## Side by side (3 parties, 0 ms; ~ = extrapolated)", side_by_side(results),
              "## By parties: seconds end to end (secure phase)", pivot_parties(results),
              "## By injected one-way latency: MPC seconds end to end (secure phase)",
              pivot_latency(results, "mpc"),
              "## By injected one-way latency: CKKS seconds end to end (secure phase)",
              pivot_latency(results, "ckks")]
    for sweep, title in (("rows", "Rows sweep (3 parties, 0 ms)"),
                         ("parties", "Parties sweep"),
                         ("latency", "Latency sweep (injected one-way latency on every MPC "
                                     "frame and every call a node answers)"),
                         ("target", "mean+variance+median at 3 x 10^4 rows"),
                         ("five", "Five analyses in one study")):
        mine = _sweep(cells, sweep)
        if mine:
            parts += [f"## {title}", cells_table(mine)]
    parts += ["## Naive MPyC baseline", naive_mpc_tables(results.get("naive_mpc", {})),
              "## Naive TenSEAL baseline (one ciphertext per site-column value)",
              naive_ckks_tables(results.get("naive_ckks", {})),
              "## CKKS in isolation", ckks_section(results.get("ckks", {})),
              "## Rounds per study (MPC, 3 nodes; the study beside its longest analysis)",
              study_rounds_table(results.get("study_rounds", {})),
              "## Coordinator start-up (a warm `securecalc study run` outside its phases)",
              startup_table(results.get("startup", {})),
              "## Cluster start-up (excluded from every time above)",
              table(("cluster", "nodes", "seconds"),
                    ((c["group"], c["sites"], _s(c["seconds"]))
                     for c in results.get("clusters", [])))]
    return "\n\n".join(parts) + "\n"


__all__ = ["CSV_FIELDS", "cells_table", "summary", "write_csv", "write_json"]
