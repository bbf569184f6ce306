"""The pooled plaintext baseline: every site's rows in one place, analysed with numpy.

This is what the secure engines are timed and checked against. ``load_pooled`` reads every
site's file with the project's validating loader and concatenates the columns; ``compute``
runs the analyses on the pooled arrays. Values are plain JSON-like structures (numbers,
lists, dicts) whose keys follow the obvious names; :mod:`securecalc_bench.compare` aligns
them with whatever structure a kind releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from securecalc.core.schema import Schema
from securecalc.core.table import load_table
from securecalc_bench.analyses import TABLES

Pooled = dict[str, np.ndarray]


def load_pooled(paths: Sequence[Path], schema: Schema, columns: Sequence[str]) -> Pooled:
    """The named columns of every site, concatenated (category columns as level codes)."""
    tables = [load_table(p, schema, columns) for p in paths]
    return {c: np.concatenate([t.column(c).values for t in tables]) for c in columns}


def columns_of(ids: Sequence[str]) -> list[str]:
    """Every column the analyses ``ids`` read."""
    names: list[str] = []
    for aid in ids:
        table = TABLES[aid]
        for key in ("column", "y", "time", "event", "row", "col"):
            if key in table:
                names.append(table[key])
        names += table.get("x", [])
    return list(dict.fromkeys(names))


def compute(ids: Sequence[str], data: Pooled) -> dict[str, Any]:
    """Reference value of every analysis ``ids`` on the pooled ``data``."""
    return {aid: _ONE[TABLES[aid]["kind"]](TABLES[aid], data) for aid in ids}


def _quantile(x: np.ndarray, p: float) -> float:
    return float(np.quantile(x, p, method="inverted_cdf"))


def _mean(t: Mapping[str, Any], d: Pooled) -> float:
    return float(np.mean(d[t["column"]]))


def _variance(t: Mapping[str, Any], d: Pooled) -> float:
    return float(np.var(d[t["column"]], ddof=1))


def _median(t: Mapping[str, Any], d: Pooled) -> float:
    return _quantile(d[t["column"]], 0.5)


def _quantiles(t: Mapping[str, Any], d: Pooled) -> list[float]:
    x = np.sort(d[t["column"]])
    return [_quantile(x, p) for p in t["probs"]]


def _linreg(t: Mapping[str, Any], d: Pooled) -> dict[str, Any]:
    """Ordinary least squares with an intercept from the normal equations (X'X by BLAS, the
    fast way; ``numpy.linalg.lstsq`` on the rows costs about 30x more at 3 x 10**6 rows)."""
    x = np.column_stack([np.ones(len(d[t["y"]]))] + [d[c] for c in t["x"]])
    y = d[t["y"]]
    xtx, xty = x.T @ x, x.T @ y
    beta = np.linalg.solve(xtx, xty)
    n, k = x.shape
    sigma2 = float(y @ y - beta @ xty) / (n - k)
    se = np.sqrt(np.diag(np.linalg.inv(xtx)) * sigma2)
    names = ["(intercept)", *t["x"]]
    return {"coefficients": {name: {"estimate": float(b), "se": float(s)}
                             for name, b, s in zip(names, beta, se, strict=True)}}


def _kaplan_meier(t: Mapping[str, Any], d: Pooled) -> dict[str, Any]:
    """Product-limit estimate at every distinct event time (one group, "all")."""
    time = d[t["time"]].astype(np.int64)
    event = d[t["event"]].astype(np.int64)
    top = int(time.max()) + 2 if time.size else 2
    events = np.bincount(time, weights=event, minlength=top)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(np.bincount(time, minlength=top))[:-1]])
    times = np.nonzero(events)[0]
    survival = np.cumprod(1.0 - events[times] / at_risk[times])
    return {"groups": {"all": [{"time": int(x), "at_risk": int(at_risk[x]),
                                "events": int(events[x]), "survival": float(s)}
                               for x, s in zip(times, survival, strict=True)]}}


def _crosstab(t: Mapping[str, Any], d: Pooled) -> dict[str, Any]:
    """Counts by level (codes stand for the schema's levels, in order) and Pearson's chi2."""
    a, b = d[t["row"]].astype(np.int64), d[t["col"]].astype(np.int64)
    levels_a, levels_b = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * levels_b + b, minlength=levels_a * levels_b)
    table = table.reshape(levels_a, levels_b).astype(float)
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    chi2: dict[str, Any] = {"statistic": float(((table - expected) ** 2 / expected).sum()),
                            "dof": (levels_a - 1) * (levels_b - 1)}
    try:
        from scipy.stats import chi2 as chi2_dist

        chi2["p_value"] = float(chi2_dist.sf(chi2["statistic"], chi2["dof"]))
    except ImportError:  # scipy is a development extra
        pass
    return {"table": table.astype(int).tolist(), "chi2": chi2}


_ONE = {"mean": _mean, "variance": _variance, "median": _median, "quantiles": _quantiles,
        "linreg": _linreg, "kaplan_meier": _kaplan_meier, "crosstab": _crosstab}

__all__ = ["Pooled", "columns_of", "compute", "load_pooled"]
