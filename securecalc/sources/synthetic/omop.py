"""The synthetic cohort as an OMOP CDM v5.4 extract (one CSV per table) and its loader.

Concepts: gender 8507 (male) / 8532 (female); condition 201826 (type 2 diabetes mellitus)
and 320128 (essential hypertension); drugs 1308216 (lisinopril, arm b) and 1332418
(amlodipine, arm a); measurements 3038553 (BMI), 3004249 (systolic blood pressure),
3027114 (total cholesterol); observation 4005823 (tobacco user); visit 9202 (outpatient).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from securecalc.sources.synthetic.timeline import Patient, site_patients, value_text
from securecalc.synth import site_names

EHR = 32817  #: type concept: EHR
MALE, FEMALE = 8507, 8532
DIABETES, HYPERTENSION = 201826, 320128
DRUG = {"a": 1332418, "b": 1308216}
MEASUREMENT = {"bmi": 3038553, "sbp": 3004249, "cholesterol": 3027114}
UNIT = {"bmi": 9531, "sbp": 8876, "cholesterol": 8753}  # kg/m2, mmHg, mmol/L
TOBACCO = 4005823
OUTPATIENT = 9202

#: the CDM v5.4 columns of each table written, with their types
OMOP_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (
        ("person_id", "INTEGER"), ("gender_concept_id", "INTEGER"), ("year_of_birth", "INTEGER"),
        ("month_of_birth", "INTEGER"), ("day_of_birth", "INTEGER"),
        ("birth_datetime", "TIMESTAMP"), ("race_concept_id", "INTEGER"),
        ("ethnicity_concept_id", "INTEGER"), ("location_id", "INTEGER"),
        ("provider_id", "INTEGER"), ("care_site_id", "INTEGER"),
        ("person_source_value", "VARCHAR(50)"), ("gender_source_value", "VARCHAR(50)"),
        ("gender_source_concept_id", "INTEGER"), ("race_source_value", "VARCHAR(50)"),
        ("race_source_concept_id", "INTEGER"), ("ethnicity_source_value", "VARCHAR(50)"),
        ("ethnicity_source_concept_id", "INTEGER")),
    "observation_period": (
        ("observation_period_id", "INTEGER"), ("person_id", "INTEGER"),
        ("observation_period_start_date", "DATE"), ("observation_period_end_date", "DATE"),
        ("period_type_concept_id", "INTEGER")),
    "visit_occurrence": (
        ("visit_occurrence_id", "INTEGER"), ("person_id", "INTEGER"),
        ("visit_concept_id", "INTEGER"), ("visit_start_date", "DATE"),
        ("visit_start_datetime", "TIMESTAMP"), ("visit_end_date", "DATE"),
        ("visit_end_datetime", "TIMESTAMP"), ("visit_type_concept_id", "INTEGER"),
        ("provider_id", "INTEGER"), ("care_site_id", "INTEGER"),
        ("visit_source_value", "VARCHAR(50)"), ("visit_source_concept_id", "INTEGER"),
        ("admitted_from_concept_id", "INTEGER"), ("admitted_from_source_value", "VARCHAR(50)"),
        ("discharged_to_concept_id", "INTEGER"), ("discharged_to_source_value", "VARCHAR(50)"),
        ("preceding_visit_occurrence_id", "INTEGER")),
    "condition_occurrence": (
        ("condition_occurrence_id", "INTEGER"), ("person_id", "INTEGER"),
        ("condition_concept_id", "INTEGER"), ("condition_start_date", "DATE"),
        ("condition_start_datetime", "TIMESTAMP"), ("condition_end_date", "DATE"),
        ("condition_end_datetime", "TIMESTAMP"), ("condition_type_concept_id", "INTEGER"),
        ("condition_status_concept_id", "INTEGER"), ("stop_reason", "VARCHAR(20)"),
        ("provider_id", "INTEGER"), ("visit_occurrence_id", "INTEGER"),
        ("visit_detail_id", "INTEGER"), ("condition_source_value", "VARCHAR(50)"),
        ("condition_source_concept_id", "INTEGER"),
        ("condition_status_source_value", "VARCHAR(50)")),
    "drug_exposure": (
        ("drug_exposure_id", "INTEGER"), ("person_id", "INTEGER"), ("drug_concept_id", "INTEGER"),
        ("drug_exposure_start_date", "DATE"), ("drug_exposure_start_datetime", "TIMESTAMP"),
        ("drug_exposure_end_date", "DATE"), ("drug_exposure_end_datetime", "TIMESTAMP"),
        ("verbatim_end_date", "DATE"), ("drug_type_concept_id", "INTEGER"),
        ("stop_reason", "VARCHAR(20)"), ("refills", "INTEGER"), ("quantity", "NUMERIC"),
        ("days_supply", "INTEGER"), ("sig", "TEXT"), ("route_concept_id", "INTEGER"),
        ("lot_number", "VARCHAR(50)"), ("provider_id", "INTEGER"),
        ("visit_occurrence_id", "INTEGER"), ("visit_detail_id", "INTEGER"),
        ("drug_source_value", "VARCHAR(50)"), ("drug_source_concept_id", "INTEGER"),
        ("route_source_value", "VARCHAR(50)"), ("dose_unit_source_value", "VARCHAR(50)")),
    "measurement": (
        ("measurement_id", "INTEGER"), ("person_id", "INTEGER"),
        ("measurement_concept_id", "INTEGER"), ("measurement_date", "DATE"),
        ("measurement_datetime", "TIMESTAMP"), ("measurement_time", "VARCHAR(10)"),
        ("measurement_type_concept_id", "INTEGER"), ("operator_concept_id", "INTEGER"),
        ("value_as_number", "NUMERIC"), ("value_as_concept_id", "INTEGER"),
        ("unit_concept_id", "INTEGER"), ("range_low", "NUMERIC"), ("range_high", "NUMERIC"),
        ("provider_id", "INTEGER"), ("visit_occurrence_id", "INTEGER"),
        ("visit_detail_id", "INTEGER"), ("measurement_source_value", "VARCHAR(50)"),
        ("measurement_source_concept_id", "INTEGER"), ("unit_source_value", "VARCHAR(50)"),
        ("unit_source_concept_id", "INTEGER"), ("value_source_value", "VARCHAR(50)"),
        ("measurement_event_id", "BIGINT"), ("meas_event_field_concept_id", "INTEGER")),
    "observation": (
        ("observation_id", "INTEGER"), ("person_id", "INTEGER"),
        ("observation_concept_id", "INTEGER"), ("observation_date", "DATE"),
        ("observation_datetime", "TIMESTAMP"), ("observation_type_concept_id", "INTEGER"),
        ("value_as_number", "NUMERIC"), ("value_as_string", "VARCHAR(60)"),
        ("value_as_concept_id", "INTEGER"), ("qualifier_concept_id", "INTEGER"),
        ("unit_concept_id", "INTEGER"), ("provider_id", "INTEGER"),
        ("visit_occurrence_id", "INTEGER"), ("visit_detail_id", "INTEGER"),
        ("observation_source_value", "VARCHAR(50)"),
        ("observation_source_concept_id", "INTEGER"), ("unit_source_value", "VARCHAR(50)"),
        ("qualifier_source_value", "VARCHAR(50)"), ("value_source_value", "VARCHAR(50)"),
        ("observation_event_id", "BIGINT"), ("obs_event_field_concept_id", "INTEGER")),
    "death": (
        ("person_id", "INTEGER"), ("death_date", "DATE"), ("death_datetime", "TIMESTAMP"),
        ("death_type_concept_id", "INTEGER"), ("cause_concept_id", "INTEGER"),
        ("cause_source_value", "VARCHAR(50)"), ("cause_source_concept_id", "INTEGER")),
}


class _Writer:
    """One CSV per table; rows given as {column: value}, absent columns empty."""

    def __init__(self, folder: Path):
        self.files = {t: (folder / f"{t}.csv").open("w", newline="") for t in OMOP_TABLES}
        self.writers = {t: csv.writer(f) for t, f in self.files.items()}
        self.ids = dict.fromkeys(OMOP_TABLES, 0)
        for table, columns in OMOP_TABLES.items():
            self.writers[table].writerow([c for c, _ in columns])

    def row(self, table: str, **values: Any) -> None:
        self.ids[table] += 1
        key = f"{table}_id" if table != "visit_occurrence" else "visit_occurrence_id"
        if key in dict(OMOP_TABLES[table]):
            values.setdefault(key, self.ids[table])
        self.writers[table].writerow(["" if values.get(c) is None else values[c]
                                      for c, _ in OMOP_TABLES[table]])

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _person(w: _Writer, p: Patient) -> None:
    pid = p.number
    w.row("person", person_id=pid, gender_concept_id=MALE if p.male else FEMALE,
          year_of_birth=p.birth.year, month_of_birth=p.birth.month, day_of_birth=p.birth.day,
          birth_datetime=f"{p.birth} 00:00:00", race_concept_id=0, ethnicity_concept_id=0,
          person_source_value=str(pid), gender_source_value="M" if p.male else "F")
    w.row("observation_period", person_id=pid, observation_period_start_date=p.index,
          observation_period_end_date=p.end, period_type_concept_id=EHR)
    w.row("visit_occurrence", person_id=pid, visit_concept_id=OUTPATIENT,
          visit_start_date=p.index, visit_end_date=p.index, visit_type_concept_id=EHR)
    for concept, onset in ((DIABETES, p.diabetes_onset), (HYPERTENSION, p.hypertension_onset)):
        if onset is not None:
            w.row("condition_occurrence", person_id=pid, condition_concept_id=concept,
                  condition_start_date=onset, condition_type_concept_id=EHR)
    w.row("drug_exposure", person_id=pid, drug_concept_id=DRUG[p.arm],
          drug_exposure_start_date=p.index,
          drug_exposure_end_date=p.index + dt.timedelta(days=90), drug_type_concept_id=EHR)
    for m in p.measurements:
        w.row("measurement", person_id=pid, measurement_concept_id=MEASUREMENT[m.column],
              measurement_date=m.date, measurement_type_concept_id=EHR,
              value_as_number=value_text(m), unit_concept_id=UNIT[m.column])
    if p.smoker:
        w.row("observation", person_id=pid, observation_concept_id=TOBACCO,
              observation_date=p.index, observation_type_concept_id=EHR)
    if p.death is not None:
        w.row("death", person_id=pid, death_date=p.death, death_type_concept_id=EHR)


def write_omop(out_dir: Path, *, sites: int, rows: int, seed: int = 0,
               names: Sequence[str] | None = None) -> list[Path]:
    """One folder of OMOP CSVs per site (``out_dir/hospital-a/person.csv``, ...)."""
    if sites < 1 or rows < 0:
        raise ValueError(f"need sites >= 1 and rows >= 0, got sites={sites}, rows={rows}")
    stems = list(names) if names is not None else site_names(sites)
    folders = []
    for i, stem in enumerate(stems):
        folder = Path(out_dir) / stem
        folder.mkdir(parents=True, exist_ok=True)
        writer = _Writer(folder)
        try:
            for patient in site_patients(i, rows, seed):
                _person(writer, patient)
        finally:
            writer.close()
        folders.append(folder)
    return folders


def _ddl(table: str, dialect: str) -> Iterable[str]:
    for column, sql_type in OMOP_TABLES[table]:
        if dialect == "duckdb" and sql_type == "NUMERIC":
            sql_type = "DOUBLE"  # DuckDB's NUMERIC is DECIMAL(18,3)
        yield f'"{column}" {sql_type}'


def load_omop(conn: Any, folder: Path, schema: str = "cdm") -> None:
    """Create ``schema`` and the CDM tables in a DuckDB or psycopg connection, and load the
    CSVs of ``folder`` (as :func:`write_omop` writes them)."""
    folder = Path(folder)
    quoted = '"' + schema.replace('"', '""') + '"'
    if type(conn).__module__.lstrip("_").startswith("duckdb"):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        for table in OMOP_TABLES:
            conn.execute(f"CREATE TABLE {quoted}.\"{table}\" ({', '.join(_ddl(table, 'duckdb'))})")
            conn.execute(f"INSERT INTO {quoted}.\"{table}\" SELECT * FROM read_csv($1, "
                         "header = true, all_varchar = true)", [str(folder / f"{table}.csv")])
        return
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        for table in OMOP_TABLES:
            cur.execute(f"CREATE TABLE {quoted}.\"{table}\" "
                        f"({', '.join(_ddl(table, 'postgres'))})")
            with (folder / f"{table}.csv").open("rb") as source, cur.copy(
                    f"COPY {quoted}.\"{table}\" FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        for table in OMOP_TABLES:  # as the OHDSI DDL does: every event table by person
            cur.execute(f"CREATE INDEX ON {quoted}.\"{table}\" (person_id)")
            cur.execute(f"ANALYZE {quoted}.\"{table}\"")
    conn.commit()


__all__ = ["OMOP_TABLES", "load_omop", "write_omop"]
