"""The hospitals the adversary attacks: a published catalogue and rows with one patient.

Every hospital holds 40 rows. The old cohort (``age >= 90``) has 10 patients over the three
hospitals (4, 3, 3), so it passes ``min_cohort = 10``; one of them, at hospital-a, is the
:data:`PATIENT`: the only woman of that cohort, the only ``age == 93 and sex == 'F'`` row
anywhere, and the only row of the cohort with ``cens = 0``. ``variant`` gives other rows
(another seed) under the same catalogue, for checking that refusals do not depend on rows.
"""

from __future__ import annotations

import random
from pathlib import Path

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")

CATALOGUE = """
[catalogue.age]
type = "int"
min = 18
max = 95

[catalogue.sex]
type = "category"
levels = ["F", "M"]

[catalogue.sbp]
type = "int"
min = 80
max = 220

[catalogue.y]
type = "float"
min = 0.0
max = 100.0

[catalogue.cens]
type = "int"
min = 0
max = 1
"""
#: the catalogue restated exactly, as a study's schema
SCHEMA = CATALOGUE.replace("[catalogue.", "[schema.")

#: the patient's values (hospital-a, first row)
PATIENT = {"age": 93, "sex": "F", "sbp": 187, "y": 73.25, "cens": 0}
#: a filter that selects exactly the patient
PATIENT_FILTER = "age == 93 and sex == 'F'"
OLD = "age >= 90"
OLD_AGES = {"hospital-a": (93, 90, 91, 92), "hospital-b": (90, 94, 95),
            "hospital-c": (91, 92, 94)}
ROWS = 40


def site_rows(name: str, variant: int = 0) -> list[dict[str, object]]:
    """Hospital ``name``'s rows (``variant``: other values, same catalogue and patient)."""
    rng = random.Random(f"{name}-{variant}")
    rows: list[dict[str, object]] = []
    for index, age in enumerate(OLD_AGES[name]):
        if name == "hospital-a" and index == 0:
            rows.append(dict(PATIENT))
        else:
            rows.append({"age": age, "sex": "M", "sbp": rng.randint(120, 200),
                         "y": round(rng.uniform(20, 90), 2), "cens": 1})
    while len(rows) < ROWS:
        rows.append({"age": rng.randint(18, 89), "sex": rng.choice("FM"),
                     "sbp": rng.randint(90, 200), "y": round(rng.uniform(5, 95), 2),
                     "cens": rng.randint(0, 1)})
    return rows


def write_site(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = ("age", "sex", "sbp", "y", "cens")
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sites(folder: Path, variant: int = 0) -> dict[str, Path]:
    """Every hospital's data file in ``folder``."""
    return {name: write_site(folder / f"{name}.csv", site_rows(name, variant))
            for name in HOSPITALS}


def policy(**extra: object) -> str:
    """A ``[policy]`` table: min_cohort 10, min_cell_count 5, every hospital required."""
    lines = ["[policy]", "min_cohort = 10", "min_cell_count = 5",
             "require_all_hospitals = true"]
    for key, value in extra.items():
        lines.append(f"{key} = " + (f'"{value}"' if isinstance(value, str)
                                    else str(value).lower() if isinstance(value, bool)
                                    else str(value)))
    return "\n".join(lines) + "\n"


def analysis(aid: str, kind: str, **keys: object) -> str:
    """One ``[[analysis]]`` table."""
    import json

    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'[[analysis]]\nid = "{aid}"\nkind = "{kind}"\n{body}\n'


QUICK = "timeout_seconds = 60\npeer_timeout_seconds = 5\n"
