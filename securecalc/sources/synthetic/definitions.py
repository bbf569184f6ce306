"""Column definitions under which a node reads the synthetic OMOP extract or FHIR export as
exactly the rows of the synthetic CSV cohort (:data:`securecalc.synth.SYNTH_CATALOGUE_TOML`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from securecalc.sources.synthetic import fhir as f
from securecalc.sources.synthetic import omop as o

YES_NO = {"true": "yes", "false": "no"}

SYNTH_OMOP_COLUMNS: dict[str, dict[str, Any]] = {
    "age": {"omop": "age_at_index"},
    "sex": {"omop": "sex", "levels": {str(o.FEMALE): "F", str(o.MALE): "M"}},
    "bmi": {"omop": "last_measurement_value", "concept_id": o.MEASUREMENT["bmi"]},
    "sbp": {"omop": "last_measurement_value", "concept_id": o.MEASUREMENT["sbp"]},
    "cholesterol": {"omop": "last_measurement_value",
                    "concept_id": o.MEASUREMENT["cholesterol"]},
    "diabetes": {"omop": "has_condition", "concept_ids": [o.DIABETES], "levels": YES_NO},
    "arm": {"omop": "has_drug", "concept_ids": [o.DRUG["b"]],
            "levels": {"true": "b", "false": "a"}},
    "followup_days": {"omop": "days_to_death_or_end_of_observation"},
    "event": {"omop": "death_event"},
}

SYNTH_FHIR_COLUMNS: dict[str, dict[str, Any]] = {
    "age": {"fhir": "age_at_index"},
    "sex": {"fhir": "sex", "levels": {"female": "F", "male": "M"}},
    **{name: {"fhir": "last_observation_value", "system": f.LOINC, "code": f.LOINC_CODE[name]}
       for name in ("bmi", "sbp", "cholesterol")},
    "diabetes": {"fhir": "has_condition", "system": f.SNOMED, "codes": [f.DIABETES],
                 "levels": YES_NO},
    "arm": {"fhir": "last_observation_value", "system": f.ARM_SYSTEM, "code": "arm",
            "value_path": "valueCodeableConcept.coding[0].code"},
    "followup_days": {"fhir": "days_to_death_or_end_of_observation"},
    "event": {"fhir": "death_event"},
}


def synth_omop_source(name: str, *, duckdb: Path | None = None,
                      postgres: dict[str, Any] | None = None,
                      schema: str = "cdm") -> dict[str, Any]:
    """A ``[[source]]`` table (as parsed TOML) reading a loaded synthetic OMOP extract."""
    engine: dict[str, Any] = {"duckdb": str(duckdb)} if duckdb is not None else {
        "postgres": postgres}
    return {"kind": "omop", "name": name, "schema": schema, **engine,
            "columns": SYNTH_OMOP_COLUMNS}


def synth_fhir_source(name: str, folder: Path) -> dict[str, Any]:
    """A ``[[source]]`` table (as parsed TOML) reading a synthetic FHIR export folder."""
    return {"kind": "fhir", "name": name, "path": str(folder), "columns": SYNTH_FHIR_COLUMNS}


__all__ = ["SYNTH_FHIR_COLUMNS", "SYNTH_OMOP_COLUMNS", "synth_fhir_source", "synth_omop_source"]
