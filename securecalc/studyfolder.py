"""Writing the configuration files of a study: node.toml, compute.toml, study.toml.

Used by the demo and the tests; the files it writes are the ones a person would write by hand
(see examples/).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from securecalc.pins import folder_pins
from securecalc.synth import SYNTH_CATALOGUE_TOML

DEMO_ANALYSES_TOML = '''\
[[analysis]]
id = "patients"
kind = "count"

[[analysis]]
id = "arm_a_50plus"
kind = "count"
where = "arm == 'a' and age >= 50"

[[analysis]]
id = "mean_age"
kind = "mean"
column = "age"

[[analysis]]
id = "mean_age_arm_a_50plus"
kind = "mean"
column = "age"
where = "arm == 'a' and age >= 50"

[[analysis]]
id = "events"
kind = "sum"
column = "event"

[[analysis]]
id = "var_sbp"
kind = "variance"
column = "sbp"

[[analysis]]
id = "std_bmi_diabetic"
kind = "std"
column = "bmi"
where = "diabetes == 'yes'"

[[analysis]]
id = "mean_cholesterol_women"
kind = "mean"
column = "cholesterol"
where = "sex == 'F' and not (age < 40)"

[[analysis]]
id = "median_sbp"
kind = "median"
column = "sbp"

[[analysis]]
id = "sbp_model"
kind = "linreg"
y = "sbp"
x = ["age", "bmi", "sex"]

[[analysis]]
id = "survival_by_arm"
kind = "kaplan_meier"
time = "followup_days"
event = "event"
group = "arm"
grid = [365, 730, 1095, 1460, 1825, 2190, 2555, 2920, 3285, 3650]
'''


def _tls_block(pki: Path, name: str) -> str:
    return (f'[tls]\nca = "{pki / "ca.crt"}"\ncert = "{pki / f"{name}.crt"}"\n'
            f'key = "{pki / f"{name}.key"}"\n')


def pins_toml(pki: Path) -> str:
    """``[pins]`` with the key pin of every party certificate (``<name>.crt``) in ``pki``:
    what each party would have received from the others (empty without certificates)."""
    pins = folder_pins(pki)
    if not pins:
        return ""
    return "[pins]\n" + "".join(f'"{name}" = "{pin}"\n' for name, pin in pins.items())


def node_toml(name: str, listen: str, data: Path, pki: Path,
              hospitals: Sequence[str], catalogue: str = SYNTH_CATALOGUE_TOML) -> str:
    """node.toml of hospital ``name``, computing with the ``hospitals`` of its roster;
    ``catalogue`` is its ``[catalogue.*]`` tables (by default, what a :mod:`securecalc.synth`
    site offers)."""
    roster = ", ".join(f'"{h}"' for h in hospitals)
    return (f'[node]\nname = "{name}"\nlisten = "{listen}"\nhospitals = [{roster}]\n\n'
            f'[data]\npath = "{data}"\n\n' + _tls_block(pki, name) + "\n"
            + pins_toml(pki) + "\n" + catalogue.strip() + "\n")


def toml_value(value: Any) -> str:
    """``value`` (str, int, float, bool, Path, list or mapping) as a TOML value; mappings as
    inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def sources_toml(sources: Sequence[Mapping[str, Any]]) -> str:
    """``[[source]]`` tables from parsed form (e.g. :func:`synth_omop_source`'s); a nested
    mapping becomes a sub-table (``[source.postgres]``) or, under ``columns``, one line per
    column."""
    out = []
    for source in sources:
        lines = ["[[source]]"]
        tables = []
        for key, value in source.items():
            if key == "columns" and isinstance(value, Mapping):
                tables.append("[source.columns]\n" + "".join(
                    f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in value.items()))
            elif isinstance(value, Mapping):
                tables.append(f"[source.{key}]\n" + "".join(
                    f"{k} = {toml_value(v)}\n" for k, v in value.items()))
            else:
                lines.append(f"{key} = {toml_value(value)}")
        out.append("\n".join(lines) + "\n" + "".join(tables))
    return "\n".join(out)


def node_sources_toml(name: str, listen: str, sources: Sequence[Mapping[str, Any]], pki: Path,
                      hospitals: Sequence[str], catalogue: str = SYNTH_CATALOGUE_TOML) -> str:
    """node.toml of hospital ``name`` reading ``sources`` (``[[source]]`` tables in parsed
    form) instead of a ``[data]`` file."""
    roster = ", ".join(f'"{h}"' for h in hospitals)
    return (f'[node]\nname = "{name}"\nlisten = "{listen}"\nhospitals = [{roster}]\n\n'
            + sources_toml(sources) + "\n" + _tls_block(pki, name) + "\n"
            + pins_toml(pki) + "\n" + catalogue.strip() + "\n")


def compute_toml(name: str, listen: str, pki: Path) -> str:
    """compute.toml of the compute node ``name``, pinning every certificate in ``pki``."""
    return (f'[compute]\nname = "{name}"\nlisten = "{listen}"\n\n' + _tls_block(pki, name)
            + "\n" + pins_toml(pki))


def study_toml(name: str, engine: str, parties: Sequence[tuple[str, str]], pki: Path,
               schema_toml: str, analyses_toml: str, *,
               compute: tuple[str, str] | None = None, extra_study: str = "",
               coordinator: str = "coordinator") -> str:
    lines = [f'[study]\nname = "{name}"\nengine = "{engine}"\n{extra_study}']
    for party, address in parties:
        lines.append(f'[[party]]\nname = "{party}"\naddress = "{address}"\n')
    if compute is not None:
        lines.append(f'[compute]\nname = "{compute[0]}"\naddress = "{compute[1]}"\n')
    lines.append(_tls_block(pki, coordinator))
    lines.append(schema_toml.strip() + "\n")
    lines.append(analyses_toml)
    return "\n".join(lines)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
