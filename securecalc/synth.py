"""A synthetic multi-center cardiovascular cohort, for demos, tests and benchmarks.

Each site has its own population (age, sex mix, BMI, blood pressure, cholesterol, diabetes
prevalence, baseline hazard and follow-up length), so per-site statistics differ while the
pooled analysis stays meaningful. Site ``i`` draws from its own stream ``(seed, i)``; its
population profile depends on ``i`` only (hospital-a, say, is always among the youngest).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from securecalc.core.schema import Schema, schema_from_mapping

SYNTH_SCHEMA_TOML = """\
[schema.age]
type = "int"
min = 18
max = 95

[schema.sex]
type = "category"
levels = ["F", "M"]

[schema.bmi]
type = "float"
min = 15.0
max = 60.0

[schema.sbp]
type = "int"
min = 80
max = 220

[schema.cholesterol]
type = "float"
min = 2.0
max = 12.0

[schema.diabetes]
type = "category"
levels = ["no", "yes"]

[schema.arm]
type = "category"
levels = ["a", "b"]

[schema.followup_days]
type = "int"
min = 1
max = 3650

[schema.event]
type = "int"
min = 0
max = 1
"""

#: what a node serving a synthetic site offers: the schema's columns, bounds and levels
SYNTH_CATALOGUE_TOML = SYNTH_SCHEMA_TOML.replace("[schema.", "[catalogue.")

DECIMALS = {"bmi": 1, "cholesterol": 2}
MISSING_RATE = {"bmi": 0.02, "cholesterol": 0.01}
FORMATS = {"csv": ".csv", "parquet": ".parquet"}


def synth_schema() -> Schema:
    """The cohort's schema (the tables of :data:`SYNTH_SCHEMA_TOML`)."""
    return schema_from_mapping(tomllib.loads(SYNTH_SCHEMA_TOML)["schema"])


def _profile(site_index: int) -> dict[str, float]:
    """Site effects: fixed per site, spread so that neighbouring sites clearly differ."""

    def step(multiplier: int) -> int:  # -2..2, a different permutation per multiplier
        return (site_index * multiplier) % 5 - 2

    return {
        "age_mean": 58.0 + 4.0 * step(2),
        "male": 0.5 + 0.06 * step(3),
        "bmi_mean": 27.0 + 0.9 * step(4),
        "sbp_shift": 3.0 * step(3),
        "chol_shift": 0.25 * step(1),
        "diabetes_shift": 0.3 * step(4),
        "hazard": 1.4e-4 * (1.0 + 0.15 * step(2)),
        "followup_max": 3650.0 - 400.0 * (site_index % 4),
    }


def generate_site(site_index: int, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One site's rows: int64 / float64 (NaN = missing) arrays and string arrays for categories."""
    p = _profile(site_index)
    age = np.clip(np.rint(rng.normal(p["age_mean"], 13.0, rows)), 18, 95)
    male = rng.random(rows) < p["male"]
    bmi = np.exp(rng.normal(np.log(p["bmi_mean"]) + 0.002 * (age - 58), 0.17, rows))
    bmi = np.round(np.clip(bmi, 15.0, 60.0), 1)
    sbp = 96 + 0.55 * age + 0.9 * (bmi - 27) + 4.0 * male + p["sbp_shift"]
    sbp = np.clip(np.rint(sbp + rng.normal(0, 14, rows)), 80, 220)
    chol = 5.3 + p["chol_shift"] + 0.008 * (age - 58) - 0.25 * male + rng.normal(0, 1.0, rows)
    chol = np.clip(chol, 2.0, 12.0).round(2)
    logit = -1.8 + 0.05 * (age - 60) + 0.12 * (bmi - 27) + p["diabetes_shift"]
    diabetes = rng.random(rows) < 1 / (1 + np.exp(-logit))
    arm_b = rng.permutation(np.arange(rows) % 2).astype(bool)  # randomised 1:1
    hazard = p["hazard"] * np.exp(0.045 * (age - 60) + 0.6 * diabetes - 0.35 * arm_b)
    event_time = rng.exponential(1 / hazard)
    censor_time = np.minimum(rng.uniform(180, p["followup_max"], rows), rng.exponential(9000, rows))
    event = event_time <= censor_time
    followup = np.clip(np.ceil(np.minimum(event_time, censor_time)), 1, 3650)
    for name, column in (("bmi", bmi), ("cholesterol", chol)):
        column[rng.random(rows) < MISSING_RATE[name]] = np.nan
    return {
        "age": age.astype(np.int64),
        "sex": np.where(male, "M", "F"),
        "bmi": bmi,
        "sbp": sbp.astype(np.int64),
        "cholesterol": chol,
        "diabetes": np.where(diabetes, "yes", "no"),
        "arm": np.where(arm_b, "b", "a"),
        "followup_days": followup.astype(np.int64),
        "event": event.astype(np.int64),
    }


def site_names(sites: int) -> list[str]:
    """``hospital-a`` ... ``hospital-z``, then ``hospital-aa``, ``hospital-ab``, ..."""
    names = []
    for i in range(sites):
        letters, n = "", i + 1
        while n:
            n, r = divmod(n - 1, 26)
            letters = chr(ord("a") + r) + letters
        names.append(f"hospital-{letters}")
    return names


def write_cohort(
    out_dir: Path,
    *,
    sites: int,
    rows: int,
    seed: int = 0,
    names: Sequence[str] | None = None,
    fmt: str = "csv",
) -> list[Path]:
    """Write one file per site into ``out_dir`` (created if needed); return the paths.

    ``names`` are file stems (default ``hospital-a``, ...); ``fmt`` is ``csv`` or ``parquet``.
    """
    if sites < 1 or rows < 0:
        raise ValueError(f"need sites >= 1 and rows >= 0, got sites={sites}, rows={rows}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    stems = list(names) if names is not None else site_names(sites)
    if len(stems) != sites or len(set(stems)) != sites:
        raise ValueError(f"need {sites} distinct names, got {stems!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, stem in enumerate(stems):
        path = out_dir / (stem if stem.endswith(FORMATS[fmt]) else stem + FORMATS[fmt])
        data = generate_site(i, rows, np.random.default_rng([seed, i]))
        if fmt == "csv":
            _write_csv(path, data)
        else:
            pq.write_table(_arrow_table(data, text=False), path)
        paths.append(path)
    return paths


def _arrow_table(data: dict[str, np.ndarray], *, text: bool) -> pa.Table:
    """Arrow columns; with ``text``, floats become fixed-decimal strings (missing = null)."""
    arrays = {}
    for name, values in data.items():
        if name in DECIMALS:
            missing = np.isnan(values)
            arrays[name] = (
                _fixed(values, DECIMALS[name], missing)
                if text
                else pa.array(values, pa.float64(), mask=missing)
            )
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def _fixed(values: np.ndarray, decimals: int, missing: np.ndarray) -> pa.Array:
    """Format non-negative floats with exactly ``decimals`` decimals, vectorized."""
    scaled = np.rint(np.where(missing, 0.0, values) * 10**decimals).astype(np.int64)
    assert (scaled >= 0).all(), "only non-negative values are formatted"
    digits = pc.utf8_lpad(pc.cast(pa.array(scaled), pa.string()), decimals + 1, "0")
    whole = pc.utf8_slice_codeunits(digits, 0, -decimals)
    frac = pc.utf8_slice_codeunits(digits, -decimals)
    text = pc.binary_join_element_wise(whole, frac, ".")
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)


def _write_csv(path: Path, data: dict[str, np.ndarray]) -> None:
    table = _arrow_table(data, text=True)
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(table, sink, options)


__all__ = ["SYNTH_CATALOGUE_TOML", "SYNTH_SCHEMA_TOML", "generate_site", "site_names",
           "synth_schema", "write_cohort"]
