"""The synthetic cohort as a FHIR R4 Bulk Data export: Patient, Encounter, Condition and
Observation NDJSON per site.

Codes: SNOMED CT 44054006 (type 2 diabetes) and 38341003 (hypertension); LOINC 39156-5
(BMI), 8480-6 (systolic blood pressure), 14647-2 (cholesterol, mmol/L); the treatment arm is
an Observation coded ``ARM_SYSTEM`` | ``arm`` whose valueCodeableConcept is ``a`` or ``b``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from securecalc.sources.synthetic.timeline import Patient, site_patients
from securecalc.synth import site_names

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ARM_SYSTEM = "https://securecalc.example/fhir/CodeSystem/study"
DIABETES, HYPERTENSION = "44054006", "38341003"
LOINC_CODE = {"bmi": "39156-5", "sbp": "8480-6", "cholesterol": "14647-2"}
UNIT = {"bmi": "kg/m2", "sbp": "mm[Hg]", "cholesterol": "mmol/L"}


def _ref(p: Patient) -> dict[str, str]:
    return {"reference": f"Patient/{p.number}"}


def _resources(p: Patient) -> dict[str, list[dict[str, Any]]]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": str(p.number),
                               "gender": "male" if p.male else "female",
                               "birthDate": p.birth.isoformat()}
    if p.death is not None:
        patient["deceasedDateTime"] = f"{p.death.isoformat()}T12:00:00+00:00"
    encounter = {"resourceType": "Encounter", "id": f"{p.number}-1", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "AMB"},
                 "subject": _ref(p),
                 "period": {"start": f"{p.index.isoformat()}T09:00:00+00:00",
                            "end": f"{p.end.isoformat()}T17:00:00+00:00"}}
    conditions = [
        {"resourceType": "Condition", "id": f"{p.number}-{code}", "subject": _ref(p),
         "code": {"coding": [{"system": SNOMED, "code": code}]},
         "onsetDateTime": onset.isoformat()}
        for code, onset in ((DIABETES, p.diabetes_onset), (HYPERTENSION, p.hypertension_onset))
        if onset is not None]
    observations: list[dict[str, Any]] = [
        {"resourceType": "Observation", "id": f"{p.number}-m{k}", "status": "final",
         "subject": _ref(p), "code": {"coding": [{"system": LOINC, "code": LOINC_CODE[m.column]}]},
         "effectiveDateTime": f"{m.date.isoformat()}T10:00:00+00:00",
         "valueQuantity": {"value": int(m.value) if m.column == "sbp" else m.value,
                           "unit": UNIT[m.column], "system": UCUM, "code": UNIT[m.column]}}
        for k, m in enumerate(p.measurements)]
    observations.append(
        {"resourceType": "Observation", "id": f"{p.number}-arm", "status": "final",
         "subject": _ref(p), "code": {"coding": [{"system": ARM_SYSTEM, "code": "arm"}]},
         "effectiveDateTime": p.index.isoformat(),
         "valueCodeableConcept": {"coding": [{"system": ARM_SYSTEM + "/arm", "code": p.arm}]}})
    return {"Patient": [patient], "Encounter": [encounter], "Condition": conditions,
            "Observation": observations}


def write_fhir(out_dir: Path, *, sites: int, rows: int, seed: int = 0,
               names: Sequence[str] | None = None) -> list[Path]:
    """One Bulk Data export folder per site (``out_dir/hospital-a/Patient.ndjson``, ...)."""
    if sites < 1 or rows < 0:
        raise ValueError(f"need sites >= 1 and rows >= 0, got sites={sites}, rows={rows}")
    stems = list(names) if names is not None else site_names(sites)
    folders = []
    for i, stem in enumerate(stems):
        folder = Path(out_dir) / stem
        folder.mkdir(parents=True, exist_ok=True)
        files = {r: (folder / f"{r}.ndjson").open("w")
                 for r in ("Patient", "Encounter", "Condition", "Observation")}
        try:
            for patient in site_patients(i, rows, seed):
                for resource, items in _resources(patient).items():
                    for item in items:
                        files[resource].write(json.dumps(item, separators=(",", ":")) + "\n")
        finally:
            for f in files.values():
                f.close()
        folders.append(folder)
    return folders


__all__ = ["ARM_SYSTEM", "LOINC", "SNOMED", "write_fhir"]
