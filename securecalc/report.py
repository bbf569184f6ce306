"""Readable text tables of released results."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from securecalc.core.results import StudyResult


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.9g}"
    return str(value)


def relative_error(value: Any, reference: Any) -> float | None:
    if not isinstance(value, int | float) or not isinstance(reference, int | float):
        return None
    if reference == 0:
        return abs(value)
    return abs(value - reference) / abs(reference)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, numbers right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            numeric = cell[:1].isdigit() or cell[:1] in "-." and cell[1:2].isdigit()
            out.append(cell.rjust(widths[i]) if numeric and i else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-16" if value < 1e-16 else f"{value:.3g}"


def _coefficients(value: Mapping[str, Any]) -> str:
    stat = "t" if any("t" in c for c in value["coefficients"].values()) else "z"
    rows = [[name, format_value(c["estimate"]), format_value(c["se"]),
             format_value(c.get(stat)), _p(c['p_value'])]
            for name, c in value["coefficients"].items()]
    extra = {k: v for k, v in value.items() if k != "coefficients"}
    return table(["coefficient", "estimate", "std.error", stat, "p"], rows) + \
        "\n" + ", ".join(f"{k} {format_value(v)}" for k, v in extra.items())


def _curve(value: Mapping[str, Any]) -> str:
    rows = [[group, format_value(p["time"]), str(p["at_risk"]), str(p["events"]),
             f"{p['survival']:.4f}", f"[{p['ci_lower']:.4f}, {p['ci_upper']:.4f}]"]
            for group, points in value["groups"].items() for p in points]
    return table(["group", "time", "at risk", "events", "survival", "95% CI"], rows)


def format_structured(kind: str, value: Any) -> str:
    """A readable block for a result that is not a single number."""
    if value is None:
        return "(not enough data)"
    if kind in ("linreg", "logreg"):
        return _coefficients(value)
    if kind == "kaplan_meier":
        return _curve(value)
    return json.dumps(value, indent=None, default=str)


def format_study(result: StudyResult,
                 reference: Mapping[str, tuple[Any, int]] | None = None) -> str:
    """Results with their cost, and beside them the pooled plaintext value when given.

    Results that are not single numbers (tables, curves, models) follow the summary table."""
    third = "rounds" if result.engine == "mpc" else "ciphertexts"
    headers = ["analysis", "kind", "value", "n"]
    if reference is not None:
        headers += ["pooled", "rel.error"]
    headers += ["seconds", "bytes", third]
    rows = []
    blocks = []
    for rid, r in result.results.items():
        structured = isinstance(r.value, dict | list)
        row = [rid, r.kind, "(below)" if structured else format_value(r.value),
               "-" if r.n is None else str(r.n)]
        if r.note:
            blocks.append(f"{rid}: {r.note}")
        if structured:
            blocks.append(f"{rid} ({r.kind}):\n{format_structured(r.kind, r.value)}")
        if reference is not None:
            ref_value = reference.get(rid, (None, 0))[0]
            err = relative_error(r.value, ref_value)
            row += [format_value(ref_value), "-" if err is None else f"{err:.1e}"]
        cost = r.cost
        row += [f"{cost.seconds:.3f}", str(cost.bytes_sent),
                str(cost.rounds if result.engine == "mpc" else cost.ciphertexts)]
        rows.append(row)
    total = result.cost
    phases = ", ".join(f"{k} {v:.3f}s" for k, v in result.phases.items())
    footer = (f"total: {total.seconds:.3f} s, {total.bytes_sent} bytes sent, "
              + (f"{total.rounds} rounds" if result.engine == "mpc"
                 else f"{total.ciphertexts} ciphertexts")
              + (f" ({phases})" if phases else ""))
    title = f"study {result.study!r}, engine {result.engine}, job {result.job_id[:12]}"
    return "\n".join([title, table(headers, rows), footer, *("\n" + b for b in blocks)])
