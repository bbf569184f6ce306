"""Which cells a bench run measures: one-factor-at-a-time sweeps around a base point.

The full cross product (3 engines x 5 analyses x 3 party counts x 3 row counts x 3 latencies)
is far too big for a 2-core machine, so the full run varies one factor at a time around the
base point (3 parties, 10**5 rows per site, 0 ms) and sweeps the rows for every analysis:

* ``rows``: 10**4, 10**5, 10**6 rows per site, 3 parties, every engine and analysis;
* ``parties``: MPC with 5, 10 and 20 parties, CKKS with 10 and 50 sites, 10**5 rows;
* ``latency``: MPC and CKKS with 10 and 50 ms of injected one-way latency, 10**5 rows (the
  nodes and the compute node delay every call they answer and every MPC frame they send);
* ``target``: mean+variance+median at 3 x 10**4 rows (compared with naive MPyC);
* ``five``: the five analyses in one study at 10**6 rows per site (compared with plaintext).

Besides the cells: rounds per study beside each study's longest analysis (``study_rounds``)
and the coordinator's start-up outside the phases a study reports (``startup``).

Cells that share data, party count and latency share one cluster of node processes
(a :class:`Group`); the base point belongs to several sweeps but runs once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from securecalc_bench.analyses import FIVE, MATRIX_ANALYSES, TARGET

BASE_ROWS = 100_000
ROWS = (10_000, 100_000, 1_000_000)
MPC_PARTIES = (3, 5, 10, 20)
CKKS_PARTIES = (3, 10, 50)
LATENCIES_MS = (0, 10, 50)
ENGINES = ("plain", "mpc", "ckks")
SECURE = ("mpc", "ckks")


@dataclass(frozen=True)
class Cell:
    """One measurement: an engine running one bench analysis on one configuration."""

    engine: str
    analysis: str
    parties: int
    rows: int
    latency_ms: int = 0
    sweeps: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        return (self.engine, self.analysis, self.parties, self.rows, self.latency_ms)


@dataclass(frozen=True)
class Group:
    """Cells run on one cluster: ``sites`` nodes holding ``rows`` rows each."""

    rows: int
    sites: int
    latency_ms: int
    with_compute: bool
    cells: tuple[Cell, ...]

    @property
    def name(self) -> str:
        return f"rows{self.rows}-sites{self.sites}-lat{self.latency_ms}"


@dataclass(frozen=True)
class NaiveSizes:
    """Rows per party at which each naive MPyC task is measured (then extrapolated)."""

    sizes: dict[str, tuple[int, ...]]
    km_grid: int
    #: each size is run this many times (in separate jobs); the fastest run counts
    repeats: int = 1


@dataclass(frozen=True)
class BenchPlan:
    name: str
    groups: tuple[Group, ...]
    reps: int
    naive: NaiveSizes
    naive_ckks_values: int
    micro_adds: int
    base_rows: int = BASE_ROWS
    #: seconds to wait, at most, before each cell for other processes to quieten (0: never)
    quiet_wait: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: rows per site of the demo and five-analysis studies whose rounds are counted (0: skip)
    study_rows: int = 20_000
    #: rows per site of the study whose start-up is timed (0: skip), and fresh runs timed
    startup_rows: int = 100_000
    startup_reps: int = 3

    def cells(self) -> list[Cell]:
        return [c for g in self.groups for c in g.cells]


def _merge(cells: list[Cell]) -> tuple[Cell, ...]:
    """One cell per key, carrying every sweep it belongs to (first occurrence's order)."""
    merged: dict[tuple[str, str, int, int, int], Cell] = {}
    for c in cells:
        old = merged.get(c.key)
        sweeps = (*old.sweeps, *c.sweeps) if old else c.sweeps
        merged[c.key] = Cell(c.engine, c.analysis, c.parties, c.rows, c.latency_ms,
                             tuple(dict.fromkeys(sweeps)))
    return tuple(merged.values())


def _matrix(engines: tuple[str, ...], parties: int, rows: int, sweep: str,
            latency_ms: int = 0) -> list[Cell]:
    return [Cell(e, a.name, parties, rows, latency_ms, (sweep,))
            for a in MATRIX_ANALYSES for e in engines]


def full_plan() -> BenchPlan:
    """The full run: see the module docstring."""
    groups = []
    for rows in ROWS:
        cells = _matrix(ENGINES, 3, rows, "rows")
        if rows == BASE_ROWS:
            cells += _matrix(ENGINES, 3, rows, "parties") + _matrix(SECURE, 3, rows, "latency")
        if rows == ROWS[0]:
            cells += [Cell(e, TARGET.name, 3, rows, 0, ("target",)) for e in ("plain", "mpc")]
        if rows == ROWS[-1]:
            cells += [Cell(e, FIVE.name, 3, rows, 0, ("five",)) for e in ENGINES]
        groups.append(Group(rows, 3, 0, True, _merge(cells)))
    for ms in LATENCIES_MS[1:]:
        groups.append(Group(BASE_ROWS, 3, ms, True,
                            _merge(_matrix(SECURE, 3, BASE_ROWS, "latency", ms))))
    cells = []
    for p in sorted({*MPC_PARTIES[1:], *CKKS_PARTIES[1:]}):
        engines = ("plain",) + (("mpc",) if p in MPC_PARTIES else ()) + \
            (("ckks",) if p in CKKS_PARTIES else ())
        cells += _matrix(engines, p, BASE_ROWS, "parties")
    groups.append(Group(BASE_ROWS, max(CKKS_PARTIES), 0, True, _merge(cells)))
    naive = NaiveSizes({"moments": (1_000, 3_000, 10_000), "median_select": (8, 16, 32),
                        "median_sort": (32, 100, 300), "quantiles_sort": (32, 100, 300),
                        "linreg": (300, 1_000, 3_000), "crosstab": (1_000, 3_000, 10_000),
                        "km": (10, 30, 100)}, km_grid=20, repeats=2)
    return BenchPlan("full", tuple(groups), reps=5, naive=naive, naive_ckks_values=64,
                     micro_adds=200, quiet_wait=20.0)


def quick_plan() -> BenchPlan:
    """A smoke run in well under 2 minutes: 3 parties x 10**4 rows, one latency cell per
    secure engine."""
    rows, first = ROWS[0], MATRIX_ANALYSES[0].name
    cells = _matrix(ENGINES, 3, rows, "rows")
    cells += [Cell(e, TARGET.name, 3, rows, 0, ("target",)) for e in ("plain", "mpc")]
    cells += [Cell(e, first, 3, rows, 0, ("latency",)) for e in SECURE]
    groups = (Group(rows, 3, 0, True, _merge(cells)),
              Group(rows, 3, LATENCIES_MS[1], True,
                    tuple(Cell(e, first, 3, rows, LATENCIES_MS[1], ("latency",))
                          for e in SECURE)))
    naive = NaiveSizes({"moments": (50, 100), "median_select": (2, 4), "median_sort": (4, 8),
                        "quantiles_sort": (4, 8), "linreg": (20, 40), "crosstab": (20, 40),
                        "km": (4, 8)}, km_grid=5)
    note = ("quick run: 10**4 rows per site only, one repetition, tiny naive baselines; "
            "figures are a smoke test, not results")
    return BenchPlan("quick", groups, reps=1, naive=naive, naive_ckks_values=8, micro_adds=20,
                     base_rows=rows, notes=(note,), study_rows=2_000, startup_rows=10_000,
                     startup_reps=1)


__all__ = ["BASE_ROWS", "CKKS_PARTIES", "ENGINES", "LATENCIES_MS", "MPC_PARTIES", "ROWS", "SECURE",
           "BenchPlan", "Cell", "Group", "NaiveSizes", "full_plan", "quick_plan"]
