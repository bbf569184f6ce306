"""The bench analyses as ``[[analysis]]`` tables, and which of them this build can run.

Each bench analysis is one small study (for example ``moments`` = a mean and a variance of the
same column). Kinds are looked up in the registry at run time, so analyses whose kinds are not
registered yet are reported as "not available" instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from securecalc_bench.datasets import PREDICTORS

PROBS = (0.1, 0.25, 0.5, 0.75, 0.9)

#: analysis id -> its [[analysis]] table (without the id)
TABLES: dict[str, dict[str, Any]] = {
    "mean_value": {"kind": "mean", "column": "value"},
    "var_value": {"kind": "variance", "column": "value"},
    "median_value": {"kind": "median", "column": "value"},
    "quantiles_value": {"kind": "quantiles", "column": "value", "probs": list(PROBS)},
    "linreg_y": {"kind": "linreg", "y": "y", "x": list(PREDICTORS)},
    "km_time": {"kind": "kaplan_meier", "time": "time", "event": "event"},
    "crosstab_ab": {"kind": "crosstab", "row": "cat_a", "col": "cat_b"},
}


@dataclass(frozen=True)
class BenchAnalysis:
    """A named group of analyses run as one study."""

    name: str
    label: str
    ids: tuple[str, ...]
    #: columns the analysis reads (naive TenSEAL encrypts each of them per row)
    columns: tuple[str, ...]

    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(TABLES[i]["kind"] for i in self.ids))


MATRIX_ANALYSES: tuple[BenchAnalysis, ...] = (
    BenchAnalysis("moments", "mean+variance", ("mean_value", "var_value"), ("value",)),
    BenchAnalysis("quantiles", "quantiles (5 probs)", ("quantiles_value",), ("value",)),
    BenchAnalysis("linreg", "linreg, 10 predictors", ("linreg_y",), (*PREDICTORS, "y")),
    BenchAnalysis("kaplan_meier", "Kaplan-Meier, 1000 times", ("km_time",), ("time", "event")),
    BenchAnalysis("crosstab", "crosstab 5x5 + chi-square", ("crosstab_ab",), ("cat_a", "cat_b")),
)
TARGET = BenchAnalysis("mvm", "mean+variance+median", ("mean_value", "var_value", "median_value"),
                       ("value",))
FIVE = BenchAnalysis("five", "all five analyses in one study",
                     tuple(i for a in MATRIX_ANALYSES for i in a.ids),
                     tuple(dict.fromkeys(c for a in MATRIX_ANALYSES for c in a.columns)))
ALL: dict[str, BenchAnalysis] = {a.name: a for a in (*MATRIX_ANALYSES, TARGET, FIVE)}


def registered_kinds() -> Mapping[str, Any]:
    from securecalc.core.kinds import KINDS

    return KINDS


def missing_kinds(analysis: BenchAnalysis, engine: str) -> list[str]:
    """Kinds of ``analysis`` that are not registered, or cannot run on ``engine``."""
    kinds = registered_kinds()
    missing = []
    for name in analysis.kinds():
        kind = kinds.get(name)
        if kind is None or (engine != "plain" and engine not in kind.engines):
            missing.append(name)
    return missing


def runnable_ids(analysis: BenchAnalysis, engine: str) -> tuple[str, ...]:
    """The analysis ids whose kinds can run on ``engine`` (all of them when available)."""
    missing = set(missing_kinds(analysis, engine))
    return tuple(i for i in analysis.ids if TABLES[i]["kind"] not in missing)


def analyses_toml(ids: Sequence[str]) -> str:
    """``[[analysis]]`` tables for ``ids``."""
    blocks = []
    for aid in ids:
        lines = ["[[analysis]]", f'id = "{aid}"']
        for key, value in TABLES[aid].items():
            lines.append(f"{key} = {_toml_value(value)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


__all__ = ["ALL", "FIVE", "MATRIX_ANALYSES", "PROBS", "TABLES", "TARGET", "BenchAnalysis",
           "analyses_toml", "missing_kinds", "runnable_ids"]
