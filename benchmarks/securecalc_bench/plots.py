"""PNG figures of a bench run (matplotlib, Agg backend): time against rows, parties, latency,
and the phases of the base point. A panel without data says so instead of vanishing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Record = dict[str, Any]
STYLE = {"plain": ("tab:green", "o"), "mpc": ("tab:blue", "s"), "ckks": ("tab:orange", "^"),
         "naive MPyC": ("tab:red", "x"), "naive TenSEAL": ("tab:purple", "+")}
PHASE_COLORS = {"local": "tab:green", "load": "tab:olive", "compute": "tab:green",
                "setup": "tab:gray", "keys": "tab:gray", "secure": "tab:blue",
                "encrypt": "tab:orange", "transfer": "tab:red", "fetch": "tab:purple",
                "decrypt": "tab:brown", "finishing": "tab:pink", "other": "lightgray"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(plt: Any, names: Sequence[str]) -> tuple[Any, list[Any]]:
    cols = min(3, max(1, len(names)))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(names):]:
        ax.axis("off")
    return fig, flat[:len(names)]


def _line(ax: Any, label: str, xs: list[float], ys: list[float], *, dashed: bool = False,
          hollow: bool = False) -> None:
    if not xs:
        return
    color, marker = STYLE.get(label.split(" (")[0], ("black", "."))
    ax.plot(xs, ys, linestyle="--" if dashed else "-", marker=marker, color=color, label=label,
            markerfacecolor="none" if hollow else color)


def _sweep_figure(path: Path, title: str, xlabel: str, analyses: Sequence[str],
                  series: Callable[[Any, str], None], *, logx: bool) -> None:
    plt = _pyplot()
    fig, axes = _panels(plt, analyses)
    for ax, name in zip(axes, analyses, strict=True):
        series(ax, name)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds")
        ax.set_yscale("log")
        if logx:
            ax.set_xscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data (kind not registered\nor sweep not run)",
                    ha="center", va="center", transform=ax.transAxes)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ok(cells: Sequence[Record], **match: Any) -> list[Record]:
    return [c for c in cells if c["status"] == "ok" and all(c[k] == v for k, v in match.items())]


def time_vs_rows(path: Path, results: Record) -> None:
    cells, analyses = results["cells"], results["plan"]["matrix_analyses"]
    naive_mpc = results.get("naive_mpc", {}).get("estimates", [])
    naive_ckks = results.get("naive_ckks", {}).get("estimates", [])

    def series(ax: Any, name: str) -> None:
        for engine in ("plain", "mpc", "ckks"):
            mine = sorted(_ok(cells, engine=engine, analysis=name, parties=3, latency_ms=0),
                          key=lambda c: c["rows"])
            xs = [c["rows"] for c in mine]
            label = "plain (numpy compute)" if engine == "plain" else f"{engine} (end to end)"
            _line(ax, label, xs, [c["seconds"] for c in mine])
            if engine == "mpc":
                _line(ax, "mpc (secure phase)", xs, [c["secure_seconds"] for c in mine],
                      dashed=True)
        for label, est in (("naive MPyC (extrapolated)", naive_mpc),
                           ("naive TenSEAL (extrapolated)", naive_ckks)):
            mine = sorted((e for e in est if e["analysis"] == name and e.get("parties", 3) == 3
                           and e.get("sites", 3) == 3), key=lambda e: e["rows_per_party"])
            _line(ax, label, [e["rows_per_party"] for e in mine], [e["seconds"] for e in mine],
                  dashed=True, hollow=True)

    _sweep_figure(path, "time vs rows per site (3 parties, 0 ms)", "rows per site", analyses,
                  series, logx=True)


def time_vs_parties(path: Path, results: Record) -> None:
    cells, analyses = results["cells"], results["plan"]["matrix_analyses"]
    rows = results["plan"]["base_rows"]

    def series(ax: Any, name: str) -> None:
        for engine in ("mpc", "ckks"):
            mine = sorted(_ok(cells, engine=engine, analysis=name, rows=rows, latency_ms=0),
                          key=lambda c: c["parties"])
            _line(ax, f"{engine} (end to end)", [c["parties"] for c in mine],
                  [c["seconds"] for c in mine])

    _sweep_figure(path, f"time vs parties ({rows} rows per site, 0 ms)", "parties", analyses,
                  series, logx=False)


def time_vs_latency(path: Path, results: Record) -> None:
    cells, analyses = results["cells"], results["plan"]["matrix_analyses"]
    rows = results["plan"]["base_rows"]

    def series(ax: Any, name: str) -> None:
        for engine in ("mpc", "ckks"):
            mine = sorted(_ok(cells, engine=engine, analysis=name, rows=rows, parties=3),
                          key=lambda c: c["latency_ms"])
            xs = [c["latency_ms"] for c in mine]
            _line(ax, f"{engine} (end to end)", xs, [c["seconds"] for c in mine])
            _line(ax, f"{engine} (secure phase)", xs, [c["secure_seconds"] for c in mine],
                  dashed=True)

    _sweep_figure(path, f"time vs injected one-way latency (3 parties, {rows} rows per site)",
                  "one-way latency (ms)", analyses, series, logx=False)


def phases(path: Path, results: Record) -> None:
    """Stacked wall time by phase of every engine and analysis at the base point."""
    rows = results["plan"]["base_rows"]
    cells = [c for c in results["cells"] if c["status"] == "ok" and c["rows"] == rows
             and c["parties"] == 3 and c["latency_ms"] == 0]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cells) + 2), 4.5))
    labels, bottoms = [], [0.0] * len(cells)
    seen: set[str] = set()
    for i, c in enumerate(cells):
        labels.append(f"{c['engine']}\n{c['analysis']}")
        for phase, seconds in c["phases"].items():
            ax.bar(i, seconds, bottom=bottoms[i], color=PHASE_COLORS.get(phase, "black"),
                   label=None if phase in seen else phase)
            seen.add(phase)
            bottoms[i] += seconds
    ax.set_xticks(range(len(cells)), labels, fontsize=7)
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"wall time by phase, 3 parties x {rows} rows, 0 ms")
    if cells:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(out: Path, results: Record) -> list[Path]:
    paths = []
    for name, draw in (("time_vs_rows", time_vs_rows), ("time_vs_parties", time_vs_parties),
                       ("time_vs_latency", time_vs_latency), ("phases", phases)):
        path = out / f"{name}.png"
        draw(path, results)
        paths.append(path)
    return paths


__all__ = ["write_all"]
