"""Every kind: the registry's metadata, and site inputs at the schema bounds within the plan's
bounds (per row, and as the MPC encoding sizes them; see kinds_engine.check_input)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from securecalc.core.kinds import KINDS
from securecalc.core.schema import Column, Schema
from tests.core.kinds_engine import run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = Schema({
    "i": Column("i", "int", min=-3, max=10),  # centre 3: |i - c| up to 7, asymmetric
    "big": Column("big", "int", min=-(2**40), max=2**40 + 1),
    "f": Column("f", "float", min=-2.5, max=1e3),
    "t": Column("t", "int", min=1, max=400),
    "e": Column("e", "int", min=0, max=1),
    "g": Column("g", "category", levels=("a", "b", "c")),
    "h": Column("h", "category", levels=("u", "v")),
})

ANALYSES = [
    {"kind": "count"}, {"kind": "sum", "column": "big"}, {"kind": "mean", "column": "i"},
    {"kind": "variance", "column": "f"}, {"kind": "std", "column": "big"},
    {"kind": "quantiles", "column": "i", "probs": [0, 0.5, 1]},
    {"kind": "median", "column": "f"}, {"kind": "min", "column": "big", "resolution": 2**26},
    {"kind": "max", "column": "t"},
    {"kind": "histogram", "column": "f", "edges": [-2.5, 0, 1e3]},
    {"kind": "crosstab", "row": "g", "col": "h"},
    {"kind": "ttest", "column": "f", "group": "g", "levels": ["a", "c"]},
    {"kind": "correlation", "columns": ["i", "big", "f", "t"]},
    {"kind": "covariance", "columns": ["f", "i"]},
    {"kind": "linreg", "y": "f", "x": ["i", "big", "g"]},
    {"kind": "linreg", "y": "big", "x": ["f", "h"]},
    {"kind": "logreg", "y": "e", "x": ["i", "f", "g"], "max_iter": 6},
    {"kind": "logreg", "y": "h", "x": ["big", "t"], "max_iter": 6},
    {"kind": "kaplan_meier", "time": "t", "event": "e", "group": "g"},
    {"kind": "logrank", "time": "f", "event": "h", "group": "g", "grid": [0, 10, 1e3]},
]


def extreme_sites(rng: np.random.Generator) -> list[dict[str, object]]:
    sites = []
    for m in (40, 25, 31):
        data: dict[str, object] = {}
        for column in SCHEMA:
            if column.type == "category":
                data[column.name] = rng.choice(column.levels, m)
            else:
                ends = np.array([column.min, column.max])
                data[column.name] = ends[rng.integers(0, 2, m)].astype(
                    np.int64 if column.type == "int" else np.float64)
        sites.append(data)
    return sites


def test_every_kind_is_covered() -> None:
    assert {a["kind"] for a in ANALYSES} == set(KINDS)


@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_inputs_at_the_bounds_fit_the_plans(engine: str) -> None:
    tables = tables_from(SCHEMA, extreme_sites(np.random.default_rng(21)))
    for raw in ANALYSES:
        try:
            run(raw, SCHEMA, tables, engine=engine, mode="mpc" if engine == "mpc" else "ckks")
        except Exception as exc:  # name the analysis that failed
            raise AssertionError(f"{raw}: {exc!r}") from exc


def test_nodes_do_not_import_scipy() -> None:
    # Finishing (p-values) runs at the coordinator; nodes and MPC workers import the kinds
    # for plans and local inputs only, and scipy.stats alone takes most of a second to import.
    code = "import sys, securecalc.core.kinds; assert 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_metadata() -> None:
    names = list(KINDS)
    assert names[:5] == ["count", "sum", "mean", "variance", "std"]
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.engines == frozenset({"mpc", "ckks"}), name
        assert kind.reveals and kind.reveals.endswith("."), name
        assert set(kind.required) <= set(kind.keys), name
        assert all(isinstance(v, str) and v for v in kind.keys.values()), name


def test_readme_states_what_each_kind_reveals() -> None:
    """The README's catalogue table of what each analysis reveals is the kinds' ``reveals``."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### What each analysis reveals beyond its output")[1]
    listed: dict[str, str] = {}
    for line in section.split("\n## ")[0].splitlines():
        if not line.startswith("| `"):
            continue
        names, text = line.strip("|").split(" | ")
        listed.update(dict.fromkeys(re.findall(r"`(\w+)`", names), text.strip() + "."))
    catalogue = [name for name in KINDS if name not in ("count", "sum", "mean", "variance",
                                                        "std")]
    assert sorted(listed) == sorted(catalogue)
    for name in catalogue:
        assert listed[name] == KINDS[name].reveals, name
