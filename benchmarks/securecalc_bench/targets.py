"""The issue's targets, evaluated on a run's results: measured figure, verdict, and why.

Verdicts: ``met``, ``missed``, or ``not measured`` (a cell failed, was not in the plan, or its
kinds are not registered yet). Timing verdicts of a quick run are smoke figures only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from securecalc_bench.matrix import BASE_ROWS, ROWS

Record = dict[str, Any]


def find(cells: Sequence[Record], engine: str, analysis: str, *, parties: int = 3,
         rows: int = BASE_ROWS, latency_ms: int = 0) -> Record | None:
    for c in cells:
        if (c["engine"], c["analysis"], c["parties"], c["rows"], c["latency_ms"]) == \
                (engine, analysis, parties, rows, latency_ms) and c["status"] == "ok":
            return c
    return None


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "missed")


def _row(tid: str, target: str, measured: str, ok: bool | None, detail: str = "") -> Record:
    return {"id": tid, "target": target, "measured": measured, "verdict": _verdict(ok),
            "detail": detail}


def mvm_vs_naive(cells: Sequence[Record], naive: dict[str, Record]) -> Record:
    target = "mean+variance+median, 3 sites x 10^4 rows: >= 100x faster than naive MPyC"
    cell = find(cells, "mpc", "mvm", rows=ROWS[0])
    if cell is None:
        return _row("mvm_vs_naive", target, "-", None, "the MPC cell did not run")
    partial = "median_value" not in cell["ids"]
    est = naive.get("moments" if partial else "mvm")
    if est is None:
        return _row("mvm_vs_naive", target, "-", None, "no naive estimate")
    ratio = est["seconds"] / cell["seconds"]
    secure_ratio = est["seconds"] / max(cell["secure_seconds"], 1e-9)
    detail = (f"naive {est['seconds']:.3g} s{' (extrapolated)' if est['extrapolated'] else ''}"
              f" vs ours {cell['seconds']:.3g} s end to end (secure phase "
              f"{cell['secure_seconds']:.3g} s: {secure_ratio:.3g}x)")
    if partial:
        detail += "; median kind not registered: mean+variance only"
    return _row("mvm_vs_naive", target, f"{ratio:.3g}x", ratio >= 100, detail)


def secure_flat(cells: Sequence[Record], analyses: Sequence[str]) -> list[Record]:
    """Secure phase at 10^6 rows over 10^4 rows, both ways within 25%. The fastest repetition
    is compared (other processes only ever add time); medians are given beside it."""
    out = []
    for engine in ("mpc", "ckks"):
        ratios, missing, noisy = [], [], []
        for name in analyses:
            lo = find(cells, engine, name, rows=ROWS[0])
            hi = find(cells, engine, name, rows=ROWS[-1])
            if lo is None or hi is None:
                missing.append(name)
                continue
            a = lo.get("secure_seconds_min", lo["secure_seconds"])
            b = hi.get("secure_seconds_min", hi["secure_seconds"])
            ratio = b / a if a > 0 else float("inf")
            ratios.append((name, ratio, a, b, hi["secure_seconds"] / lo["secure_seconds"]))
            if not 0.75 <= ratio <= 1.25:
                busy = [f"{c['rows']} rows: others used {c['foreign_cores']:.1f} cores"
                        for c in (lo, hi) if (c.get("foreign_cores") or 0) >= 0.3]
                noisy.append(f"{name} ({'; '.join(busy) or 'quiet machine'})")
        target = f"{engine.upper()} secure phase flat (within 25%) from 10^4 to 10^6 rows/site"
        measured = ", ".join(f"{n} {r:.2f}x ({a * 1e3:.0f}->{b * 1e3:.0f} ms)"
                             for n, r, a, b, _ in ratios) or "-"
        ok = None if not ratios else not noisy
        detail = "fastest of the repetitions; medians: " + ", ".join(
            f"{n} {m:.2f}x" for n, _, _, _, m in ratios)
        if noisy:
            detail += "; outside 25%: " + ", ".join(noisy)
        if missing:
            detail += f"; not measured: {', '.join(missing)}"
        out.append(_row(f"secure_flat_{engine}", target, measured, ok, detail))
    return out


def five_vs_plain(cells: Sequence[Record]) -> Record:
    target = "five-analysis MPC study, 10^6 rows/site, end to end <= 5x pooled plaintext"
    mpc = find(cells, "mpc", "five", rows=ROWS[-1])
    plain = find(cells, "plain", "five", rows=ROWS[-1])
    if mpc is None or plain is None:
        return _row("five_vs_plain", target, "-", None, "a cell did not run")
    compute = plain["phases"]["compute"]
    load = plain["phases"]["load"]
    warm = mpc["seconds"] / compute
    cold = mpc["cold_seconds"] / (load + compute)
    detail = (f"warm study {mpc['seconds']:.3g} s vs numpy compute on pooled in-memory rows "
              f"{compute:.3g} s; first study after start-up (nodes checked their files when "
              f"they started) {mpc['cold_seconds']:.3g} s vs load+compute "
              f"{load + compute:.3g} s = {cold:.3g}x")
    if len(mpc["ids"]) < 6:
        detail += f"; partial: {len(mpc['ids'])} of 6 analyses ({mpc.get('note', '')})"
    return _row("five_vs_plain", target, f"{warm:.3g}x", warm <= 5, detail)


def rounds(cells: Sequence[Record], base_rows: int,
           engine_rounds: dict[str, int] | None) -> list[Record]:
    checks = [("moments", "mean_value", 5), ("moments", "var_value", 5),
              ("linreg", "linreg_y", 5), ("quantiles", "quantiles_value", 12),
              ("mvm", "median_value", 12)]  # issue 13: at most 12 (moonshot 8)
    gate = ""
    if engine_rounds:
        gate = (f"the engine's secure sum takes {engine_rounds['sum']} rounds; the cohort "
                f"gate (study min_cohort >= 2, required by the nodes' default policy) makes "
                f"it {engine_rounds['gated_sum']}")
    out = []
    for analysis, aid, limit in checks:
        cell = find(cells, "mpc", analysis, rows=base_rows) or \
            next((c for c in cells if c["engine"] == "mpc" and c["analysis"] == analysis
                  and c["status"] == "ok" and c["latency_ms"] == 0), None)
        got = cell["analyses"].get(aid, {}).get("rounds") if cell else None
        detail = "kind not registered or cell missing" if got is None else \
            (gate if limit == 5 else "k-ary search, arity from the grid size and the party "
                 "count (at most 100 comparisons per probability and iteration at 3-5 "
                 "parties, 64 beyond): the gate on N (~4 rounds), then 2 iterations of ~9 "
                 "rounds for 10**4 points at 3 parties (moonshot: 8 rounds)")
        out.append(_row(f"rounds_{aid}", f"rounds of {aid} <= {limit}",
                        "-" if got is None else str(got), None if got is None else got <= limit,
                        detail))
    return out


def ckks_targets(cells: Sequence[Record], micro: Record | None,
                 layouts: dict[str, Record], base_rows: int) -> list[Record]:
    out = []
    if layouts:
        util = ", ".join(f"{n} {x['utilization']:.1%} ({x['n_values']} values, "
                         f"{x['ciphertexts']} ct)" for n, x in layouts.items())
        ok = all(x["utilization"] >= 0.9 for x in layouts.values())
        out.append(_row("ckks_slots", "packed layouts use >= 90% of slots", util, ok,
                        "ciphertexts = ceil(values / slots) in every layout; a layout of fewer "
                        "values than one ciphertext holds cannot fill it"))
    if micro is None:
        return out
    add = micro["add"]
    out.append(_row("ckks_add", "compute node adds a ciphertext in <= 1 ms (with validation)",
                    f"{add['median_ms']:.3g} ms median, {add['p90_ms']:.3g} ms p90",
                    add["median_ms"] <= 1.0,
                    f"validation alone {micro['validate']['median_ms']:.3g} ms"))
    ctx = micro["public_context_bytes"]
    out.append(_row("ckks_context", "public context for additive studies <= 2 MB",
                    f"{ctx / 1e6:.3g} MB", ctx <= 2e6))
    ratios = []
    for name, layout in layouts.items():
        cell = find(cells, "ckks", name, rows=base_rows)
        if cell is None or not cell.get("ciphertexts"):
            continue
        sites = cell["parties"]
        ct = micro["ciphertext_bytes"]
        sent = (cell["bytes_sent"] - sites * ctx - micro["params_context_bytes"]
                - layout["ciphertexts"] * ct) / sites
        ideal = -(-layout["n_values"] // micro["slots"]) * ct
        ratios.append((name, sent / ideal, (sent + ctx) / ideal))
    if ratios:
        out.append(_row("ckks_bytes", "bytes sent per site <= 1.2x (ciphertexts at full packing "
                        "x ciphertext size)",
                        ", ".join(f"{n} {r:.3f}x" for n, r, _ in ratios),
                        all(r <= 1.2 for _, r, _ in ratios),
                        "counting what a site receives too (the public context): " +
                        ", ".join(f"{n} {r:.2f}x" for n, _, r in ratios)))
    return out


def completes(cells: Sequence[Record]) -> list[Record]:
    out = []
    for engine, parties in (("mpc", 10), ("ckks", 50)):
        mine = [c for c in cells if c["engine"] == engine and c["parties"] == parties]
        ran = [c for c in mine if c["status"] in ("ok", "error")]
        ok = [c for c in ran if c["status"] == "ok"]
        errors = [f"{c['analysis']}: {c['note']}" for c in ran if c["status"] == "error"]
        out.append(_row(f"complete_{engine}_{parties}", f"{parties} {engine.upper()} parties "
                        "complete", f"{len(ok)}/{len(ran)} analyses" if ran else "-",
                        None if not ran else len(ok) == len(ran), "; ".join(errors)))
    return out


#: issue 13's bars on rounds per study (MPC, 3 nodes)
STUDY_ROUNDS = {"catalogue": 35, "demo": 25, "five": 31}
#: issue 13's bar on a warm ``study run``'s seconds outside its reported phases
STARTUP_SECONDS = 0.5


def study_targets(studies: Record, startup: Record) -> list[Record]:
    """Rounds per study (beside the longest analysis) and the coordinator's start-up."""
    out = []
    for r in studies.get("studies", []):
        limit = STUDY_ROUNDS.get(r["study"])
        if limit is not None:
            out.append(_row(f"study_rounds_{r['study']}",
                            f"the {r['study']} study in <= {limit} rounds", str(r["rounds"]),
                            r["rounds"] <= limit,
                            f"longest analysis {r['longest_analysis']}, sum of analyses "
                            f"{r['sum_of_analyses']}"))
    if startup.get("runs"):
        outside = startup["outside_phases_median"]
        out.append(_row("startup", f"a warm study run spends <= {STARTUP_SECONDS} s outside "
                        "its reported phases", f"{outside:.2f} s", outside <= STARTUP_SECONDS,
                        f"coordinator imports {startup['coordinator_import_seconds']:.2f} s "
                        f"(median of {len(startup['runs'])} fresh processes)"))
    return out


def evaluate(results: Record) -> list[Record]:
    cells = results["cells"]
    base_rows = results["plan"]["base_rows"]
    naive = {e["analysis"]: e for e in results.get("naive_mpc", {}).get("estimates", [])
             if e["rows_per_party"] == ROWS[0] and e["parties"] == 3}
    ckks = results.get("ckks", {})
    return [mvm_vs_naive(cells, naive),
            *secure_flat(cells, [a for a in results["plan"]["matrix_analyses"]]),
            five_vs_plain(cells),
            *rounds(cells, base_rows, results.get("naive_mpc", {}).get("engine_rounds")),
            *ckks_targets(cells, ckks.get("micro"), ckks.get("layouts", {}), base_rows),
            *completes(cells),
            *study_targets(results.get("study_rounds", {}), results.get("startup", {}))]


__all__ = ["evaluate", "find"]
