"""Both engines against numpy on the pooled rows, through real node and compute processes.

Tolerances: MPC relative error <= 1e-9 (exact for int columns), CKKS <= 1e-6.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from securecalc.coordinator.study import run_study

SCHEMA = """
[schema.age]
type = "int"
min = 0
max = 120

[schema.score]
type = "int"
min = -1000000
max = 1000000

[schema.bmi]
type = "float"
min = 10.0
max = 80.0

[schema.flat]
type = "int"
min = 0
max = 100

[schema.arm]
type = "category"
levels = ["a", "b"]
"""

ANY_COHORT = "min_cohort = 1\n"

ANALYSES = {
    "rows": ("count", None, None),
    "rows_a_old": ("count", None, "arm == 'a' and age >= 60"),
    "bmi_present": ("count", "bmi", None),
    "mean_age": ("mean", "age", None),
    "var_age": ("variance", "age", None),
    "std_bmi": ("std", "bmi", None),
    "mean_bmi": ("mean", "bmi", None),
    "sum_bmi": ("sum", "bmi", "age < 70"),
    "sum_score": ("sum", "score", None),
    "mean_score": ("mean", "score", None),
    "var_score": ("variance", "score", None),
    "mean_flat": ("mean", "flat", None),
    "var_flat": ("variance", "flat", None),
    "mean_age_b": ("mean", "age", "arm == 'b'"),  # hospital-c has no arm b: empty there
    "sum_age_at_max": ("sum", "age", "age == 120"),
    "count_age_at_min": ("count", "age", "age == 0"),
    "var_bmi_bounds": ("variance", "bmi", "bmi <= 10 or bmi >= 80"),
    "nobody": ("mean", "age", "age > 200 or age < 0"),
}


def analyses_toml() -> str:
    blocks = []
    for aid, (kind, column, where) in ANALYSES.items():
        lines = [f'[[analysis]]\nid = "{aid}"\nkind = "{kind}"']
        if column:
            lines.append(f'column = "{column}"')
        if where:
            lines.append(f'where = "{where}"')
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def make_site(rng: np.random.Generator, rows: int, site: int) -> dict[str, np.ndarray]:
    age = rng.integers(0, 121, rows)
    age[:3] = [0, 120, 120]  # values at the bounds
    bmi = np.round(rng.uniform(10, 80, rows), 3)
    bmi[:2] = [10.0, 80.0]
    bmi[5::37] = np.nan  # missing
    score = rng.integers(900_000, 1_000_001, rows)  # sums near 1e9
    arm = np.where(rng.random(rows) < 0.5, "a", "b")
    if site == 2:
        arm[:] = "a"
    return {"age": age, "score": score, "bmi": bmi, "flat": np.full(rows, 42), "arm": arm}


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in zip(*(columns[n] for n in names), strict=True):
            writer.writerow(["" if isinstance(v, float) and np.isnan(v) else v for v in row])
    return path


def reference(sites: list[dict[str, np.ndarray]]) -> dict[str, tuple[object, int]]:
    pooled = {k: np.concatenate([s[k] for s in sites]) for k in sites[0]}
    out: dict[str, tuple[object, int]] = {}
    for aid, (kind, column, where) in ANALYSES.items():
        keep = np.ones(pooled["age"].size, dtype=bool)
        age, arm, bmi = pooled["age"], pooled["arm"], pooled["bmi"]
        if where == "arm == 'a' and age >= 60":
            keep = (arm == "a") & (age >= 60)
        elif where == "age < 70":
            keep = age < 70
        elif where == "arm == 'b'":
            keep = arm == "b"
        elif where == "age == 120":
            keep = age == 120
        elif where == "age == 0":
            keep = age == 0
        elif where == "bmi <= 10 or bmi >= 80":
            keep = (bmi <= 10) | (bmi >= 80)
        elif where is not None:
            keep = (age > 200) | (age < 0)
        x = pooled[column][keep] if column else np.ones(int(keep.sum()))
        if column == "bmi":
            x = x[~np.isnan(x)]
        n = int(x.size)
        value: object
        if kind == "count":
            value = n
        elif kind == "sum":
            value = float(np.sum(x))
        elif kind == "mean":
            value = float(np.mean(x)) if n else None
        elif kind == "variance":
            value = float(np.var(x, ddof=1)) if n > 1 else None
        else:
            value = float(np.std(x, ddof=1)) if n > 1 else None
        out[aid] = (value, n)
    return out


@pytest.fixture(scope="module")
def edge_cluster(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2024)
    data_dir = tmp_path_factory.mktemp("edge-data")
    sites = [make_site(rng, rows, i) for i, rows in enumerate((700, 450, 300))]
    files = {name: write_csv(data_dir / f"{name}.csv", site)
             for name, site in zip(("hospital-a", "hospital-b", "hospital-c"), sites,
                                   strict=True)}
    # cohorts at the bounds are tiny: these nodes (and studies) allow results of any size
    allow_small = {name: "[policy]\nmin_cohort = 1\n" for name in files}
    return (cluster_factory(files, node_extra=allow_small, ckks="exact",
                            catalogue=SCHEMA.replace("[schema.", "[catalogue.")),
            reference(sites))


def check(result, expected, tolerance: float) -> None:  # type: ignore[no-untyped-def]
    for aid, (value, n) in expected.items():
        got = result.results[aid]
        assert got.n == n, aid
        if value is None:
            assert got.value is None, aid
        elif value == 0:
            assert abs(got.value) <= tolerance, (aid, got.value)
        else:
            assert abs(got.value - value) <= tolerance * abs(value), (aid, got.value, value)


@pytest.mark.timeout(120)
def test_mpc_matches_pooled_numpy(edge_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, expected = edge_cluster
    result = run_study(cluster.study("edge-mpc", "mpc", SCHEMA, analyses_toml(),
                                     extra_study=ANY_COHORT))
    check(result, expected, 1e-9)
    assert result.results["sum_score"].value == expected["sum_score"][0]  # exact, ~1e9
    assert result.results["var_flat"].value == 0.0
    for r in result.results.values():
        assert r.cost.rounds and r.cost.rounds > 0 and r.cost.bytes_sent > 0


@pytest.mark.timeout(120)
def test_ckks_matches_pooled_numpy(edge_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster, expected = edge_cluster
    result = run_study(cluster.study("edge-ckks", "ckks", SCHEMA, analyses_toml(),
                                     extra_study=ANY_COHORT))
    check(result, expected, 1e-6)
    assert result.results["rows"].value == expected["rows"][0]  # counts are rounded: exact
    for r in result.results.values():
        assert r.cost.ciphertexts and r.cost.bytes_sent > 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_small_cohorts_are_withheld(edge_cluster, engine: str) -> None:  # type: ignore[no-untyped-def]
    """At the default min_cohort (10) every analysis of fewer rows releases nothing."""
    cluster, expected = edge_cluster
    result = run_study(cluster.study(f"cohort-{engine}", engine, SCHEMA, analyses_toml()))
    for aid, (value, n) in expected.items():
        got = result.results[aid]
        if n < 10:
            assert got.value is None and got.n is None and "min_cohort" in (got.note or ""), aid
        elif value is not None:
            assert got.n == n and got.note is None, aid
    # every node is told what the coordinator released and withheld (on CKKS only the
    # coordinator sees the totals), and records it in its own audit log
    for party in cluster.addresses:
        if party == "compute":
            continue
        records = [json.loads(x) for x in
                   (cluster.root / "audit" / f"{party}.jsonl").read_text().splitlines()]
        (told,) = [r["data"] for r in records if r["event"] == "release_reported"
                   and r["data"]["job"] == result.job_id]
        status = {o["analysis"]: o["status"] for o in told["outcomes"]}
        assert status == {aid: "withheld" if n < 10 else "released"
                          for aid, (_, n) in expected.items()}, (party, status)
