"""The synthetic cohort: determinism, bounds, missingness, site effects, files that load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from securecalc.core.schema import schema_from_mapping
from securecalc.core.table import Table, load_table
from securecalc.synth import (
    SYNTH_SCHEMA_TOML,
    generate_site,
    site_names,
    synth_schema,
    write_cohort,
)

pytestmark = pytest.mark.timeout(60)

ROWS = 40_000


@pytest.fixture(scope="module")
def sites() -> list[dict[str, np.ndarray]]:
    return [generate_site(i, ROWS, np.random.default_rng([7, i])) for i in range(3)]


def test_schema_text_and_function_agree() -> None:
    schema = synth_schema()
    assert schema == schema_from_mapping(tomllib.loads(SYNTH_SCHEMA_TOML)["schema"])
    assert schema.names() == list(generate_site(0, 1, np.random.default_rng(0)))


def test_deterministic_per_seed_and_site() -> None:
    def run(seed: int, site: int) -> dict[str, np.ndarray]:
        return generate_site(site, 1000, np.random.default_rng([seed, site]))

    a, b = run(1, 0), run(1, 0)
    assert all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)
    assert not np.array_equal(a["age"], run(2, 0)["age"])
    assert not np.array_equal(a["age"], run(1, 1)["age"])


def test_values_within_schema_and_decimals(sites: list[dict[str, np.ndarray]]) -> None:
    schema = synth_schema()
    for data in sites:
        Table.from_columns(schema, data)  # validates types, bounds and levels
        for name in ("bmi", "cholesterol"):
            decimals = {"bmi": 1, "cholesterol": 2}[name]
            known = data[name][~np.isnan(data[name])]
            scaled = known * 10**decimals
            assert np.allclose(scaled, np.rint(scaled), atol=1e-6)


def test_missing_rates(sites: list[dict[str, np.ndarray]]) -> None:
    for data in sites:
        assert 0.015 < np.isnan(data["bmi"]).mean() < 0.025
        assert 0.006 < np.isnan(data["cholesterol"]).mean() < 0.014
        for name in ("age", "sbp", "followup_days", "event"):
            assert data[name].dtype == np.int64


def test_clinical_relations(sites: list[dict[str, np.ndarray]]) -> None:
    data = {k: np.concatenate([s[k] for s in sites]) for k in sites[0]}
    assert np.corrcoef(data["age"], data["sbp"])[0, 1] > 0.2
    has_bmi = ~np.isnan(data["bmi"])
    assert np.corrcoef(data["bmi"][has_bmi], data["sbp"][has_bmi])[0, 1] > 0.05
    diabetic = data["diabetes"] == "yes"
    assert data["age"][diabetic].mean() > data["age"][~diabetic].mean() + 3
    assert 0.05 < diabetic.mean() < 0.3
    arm_b = data["arm"] == "b"
    assert arm_b.sum() == len(arm_b) / 2  # randomised 1:1
    assert data["event"][arm_b].mean() < data["event"][~arm_b].mean()
    assert 0.05 < data["event"].mean() < 0.5


def test_sites_differ(sites: list[dict[str, np.ndarray]]) -> None:
    ages = [s["age"].mean() for s in sites]
    assert min(abs(a - b) for a in ages for b in ages if a is not b) > 2
    males = [(s["sex"] == "M").mean() for s in sites]
    assert max(males) - min(males) > 0.05
    assert len({round(float(np.nanmean(s["bmi"])), 1) for s in sites}) == 3


def test_write_cohort_loads_back(tmp_path: Path) -> None:
    schema = synth_schema()
    csvs = write_cohort(tmp_path / "csv", sites=3, rows=2000, seed=5)
    assert [p.name for p in csvs] == ["hospital-a.csv", "hospital-b.csv", "hospital-c.csv"]
    parquets = write_cohort(tmp_path / "pq", sites=3, rows=2000, seed=5, fmt="parquet")
    for i, (csv_path, parquet_path) in enumerate(zip(csvs, parquets, strict=True)):
        expected = Table.from_columns(schema, generate_site(i, 2000, np.random.default_rng([5, i])))
        for loaded in (load_table(csv_path, schema), load_table(parquet_path, schema)):
            assert loaded.n_rows == 2000
            for name in schema.names():
                got, want = loaded.column(name), expected.column(name)
                assert np.array_equal(got.values, want.values, equal_nan=True), name
                assert np.array_equal(got.missing, want.missing), name
    header, first = csvs[0].read_text().splitlines()[:2]
    assert header == ",".join(schema.names())
    assert '"' not in first


def test_csv_formats_fixed_decimals_and_empty_missing(tmp_path: Path) -> None:
    (path,) = write_cohort(tmp_path, sites=1, rows=3000, seed=1)
    lines = path.read_text().splitlines()[1:]
    bmi = [line.split(",")[2] for line in lines]
    chol = [line.split(",")[4] for line in lines]
    assert "" in bmi and "" in chol
    assert all(len(v.split(".")[1]) == 1 for v in bmi if v)
    assert all(len(v.split(".")[1]) == 2 for v in chol if v)


def test_write_cohort_is_deterministic_and_named(tmp_path: Path) -> None:
    first = write_cohort(tmp_path / "1", sites=2, rows=500, seed=3, names=["north", "south"])
    second = write_cohort(tmp_path / "2", sites=2, rows=500, seed=3, names=["north", "south"])
    assert [p.name for p in first] == ["north.csv", "south.csv"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other = write_cohort(tmp_path / "3", sites=2, rows=500, seed=4)
    assert first[0].read_bytes() != other[0].read_bytes()


def test_zero_rows(tmp_path: Path) -> None:
    (path,) = write_cohort(tmp_path, sites=1, rows=0)
    assert load_table(path, synth_schema()).n_rows == 0


def test_site_names() -> None:
    names = site_names(28)
    assert names[:2] == ["hospital-a", "hospital-b"]
    assert names[25:] == ["hospital-z", "hospital-aa", "hospital-ab"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sites": 0, "rows": 1},
        {"sites": 1, "rows": -1},
        {"sites": 1, "rows": 1, "fmt": "xlsx"},
        {"sites": 2, "rows": 1, "names": ["x"]},
        {"sites": 2, "rows": 1, "names": ["x", "x"]},
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        write_cohort(tmp_path, **kwargs)
