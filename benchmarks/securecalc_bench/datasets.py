"""Synthetic bench data: one Parquet file per site with the columns every bench analysis reads.

``value`` (a skewed lab value) feeds the moments and quantiles; ``x1..x10`` and ``y`` a linear
model with 10 predictors; ``time`` (integer days 1..1000, so 1000 distinct times once a site
has a few thousand rows) and ``event`` a survival analysis; ``cat_a`` x ``cat_b`` (5 levels
each, associated) a contingency table. No values are missing. Site ``i`` draws from its own
stream ``(seed, i)`` with a site-specific shift, so sites differ and files are reproducible.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.synth import site_names

PREDICTORS = tuple(f"x{i}" for i in range(1, 11))
LEVELS_A = tuple(f"a{i}" for i in range(1, 6))
LEVELS_B = tuple(f"b{i}" for i in range(1, 6))
MAX_TIME = 1000
BETA = np.array([0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.0, -2.0, 1.0, 0.3])


def _schema_toml() -> str:
    parts = ['[schema.value]\ntype = "float"\nmin = 0.0\nmax = 500.0\n']
    parts += [f'[schema.{x}]\ntype = "float"\nmin = -10.0\nmax = 10.0\n' for x in PREDICTORS]
    parts.append('[schema.y]\ntype = "float"\nmin = -200.0\nmax = 200.0\n')
    parts.append(f'[schema.time]\ntype = "int"\nmin = 1\nmax = {MAX_TIME}\n')
    parts.append('[schema.event]\ntype = "int"\nmin = 0\nmax = 1\n')
    for name, levels in (("cat_a", LEVELS_A), ("cat_b", LEVELS_B)):
        quoted = ", ".join(f'"{level}"' for level in levels)
        parts.append(f'[schema.{name}]\ntype = "category"\nlevels = [{quoted}]\n')
    return "\n".join(parts)


BENCH_SCHEMA_TOML = _schema_toml()
#: what a node serving benchmark data offers: the schema's columns, bounds and levels
BENCH_CATALOGUE_TOML = BENCH_SCHEMA_TOML.replace("[schema.", "[catalogue.")


def bench_schema() -> Schema:
    """The schema of :data:`BENCH_SCHEMA_TOML`."""
    return schema_from_mapping(tomllib.loads(BENCH_SCHEMA_TOML)["schema"])


def generate_site(site: int, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One site's columns (float64, int64, or strings for categories)."""
    shift = 0.2 * ((site * 3) % 7 - 3)
    x = np.clip(rng.normal(shift, 1.5, (rows, len(PREDICTORS))), -10.0, 10.0)
    y = np.clip(1.0 + x @ BETA + rng.normal(0.0, 2.0, rows), -200.0, 200.0)
    value = np.round(np.clip(rng.lognormal(np.log(80.0) + 0.05 * shift, 0.45, rows), 0, 500), 2)
    time = rng.integers(1, MAX_TIME + 1, rows)
    event = (rng.random(rows) < 0.55 + 0.1 * np.tanh(x[:, 0])).astype(np.int64)
    a = rng.choice(5, rows, p=np.roll([0.3, 0.25, 0.2, 0.15, 0.1], site % 5))
    b = np.where(rng.random(rows) < 0.35, a, rng.integers(0, 5, rows))  # associated with a
    columns: dict[str, np.ndarray] = {"value": value}
    columns.update({name: x[:, i] for i, name in enumerate(PREDICTORS)})
    columns.update({"y": y, "time": time.astype(np.int64), "event": event,
                    "cat_a": np.asarray(LEVELS_A)[a], "cat_b": np.asarray(LEVELS_B)[b]})
    return columns


def write_sites(out_dir: Path, *, sites: int, rows: int, seed: int = 0) -> dict[str, Path]:
    """Write (or reuse) ``sites`` Parquet files of ``rows`` rows; party name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, name in enumerate(site_names(sites)):
        path = out_dir / f"{name}.parquet"
        if not path.exists() or pq.ParquetFile(path).metadata.num_rows != rows:
            data = generate_site(i, rows, np.random.default_rng([seed, i]))
            tmp = path.with_suffix(".tmp")
            pq.write_table(pa.table(data), tmp)
            tmp.replace(path)
        paths[name] = path
    return paths


__all__ = ["BENCH_CATALOGUE_TOML", "BENCH_SCHEMA_TOML", "LEVELS_A", "LEVELS_B", "MAX_TIME",
           "PREDICTORS", "bench_schema", "generate_site", "write_sites"]
