"""FHIR R4 Bulk Data NDJSON compiled to DuckDB SQL (JSON functions over the raw resources).

One row per Patient with an Encounter. The index date is the patient's first
``Encounter.period.start``, or the declared date; "before index" means on or before it.
References are ``Patient/<id>``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from securecalc.core.schema import Schema
from securecalc.core.source_model import (
    FhirAgeAtIndex,
    FhirColumn,
    FhirDaysToDeathOrEnd,
    FhirDeathEvent,
    FhirHasCondition,
    FhirLastObservation,
    FhirSex,
    FhirSource,
)
from securecalc.sources.derived import age_in_years, bool_value, mapped
from securecalc.sources.errors import SourceError
from securecalc.sources.relation import Part, Presence, Probe, check_definitions, select_list
from securecalc.sources.sql import Sql, join, param, params_list, sql

RESOURCES = ("Patient", "Encounter", "Condition", "Observation")


def _date(json_path: str) -> Sql:
    return sql(f"TRY_CAST(substr(json ->> '{json_path}', 1, 10) AS DATE)")


def _subject() -> Sql:
    return sql("CASE WHEN starts_with(json ->> '$.subject.reference', 'Patient/') THEN "
               "substr(json ->> '$.subject.reference', 9) END")


class _Compiler:
    def __init__(self, source: FhirSource):
        self.source = source
        self.ctes: list[Sql] = []
        self.joins: list[Sql] = []
        self.presence: list[Presence] = []
        self.resources = {"Patient", "Encounter"}
        self.conditions = False

    def files(self, resource: str) -> Sql:
        self.resources.add(resource)
        files = str(self.source.path / f"{resource}*.ndjson")
        return sql("read_ndjson_objects(") + param(files) + sql(")")

    def base(self) -> list[Sql]:
        index = (sql("CAST(") + param(self.source.index) + sql(" AS DATE)")
                 if isinstance(self.source.index, dt.date) else sql("first_start"))
        return [
            sql("pat AS (SELECT json ->> '$.id' AS id, json ->> '$.gender' AS gender, ")
            + _date("$.birthDate") + sql(" AS birth, ") + _date("$.deceasedDateTime")
            + sql(" AS deceased FROM ") + self.files("Patient") + sql(")"),
            sql("ix AS (SELECT pid, last_end, ") + index + sql(" AS idx FROM (SELECT ")
            + _subject() + sql(" AS pid, MIN(") + _date("$.period.start")
            + sql(") AS first_start, MAX(COALESCE(") + _date("$.period.end") + sql(", ")
            + _date("$.period.start") + sql(")) AS last_end FROM ") + self.files("Encounter")
            + sql(" GROUP BY pid) AS e WHERE pid IS NOT NULL)"),
        ]

    def codings(self, resource: str, date_paths: tuple[str, ...], value: Sql | None) -> Sql:
        """``(pid, on_date, coding[, value])`` of every coding of ``resource``'s code."""
        when = sql("COALESCE(") + join(", ", (_date(p) for p in date_paths)) + sql(")")
        extra = sql(", ") + value + sql(" AS value") if value is not None else Sql()
        return (sql("SELECT ") + _subject() + sql(" AS pid, ") + when + sql(" AS on_date") + extra
                + sql(", unnest(CAST(json_extract(json, '$.code.coding') AS JSON[])) AS coding "
                      "FROM ") + self.files(resource))

    def has_condition(self, name: str, spec: FhirHasCondition) -> Sql:
        select = (sql("SELECT pid, on_date, coding ->> '$.system' AS system, "
                      "coding ->> '$.code' AS code FROM (")
                  + self.codings("Condition", ("$.onsetDateTime", "$.recordedDate"), None)
                  + sql(") AS c"))
        if not self.conditions:
            self.conditions = True
            self.ctes.append(sql("cond AS (") + select + sql(")"))

        def match(alias: str) -> Sql:
            return (sql(f"{alias}.system = ") + param(spec.system) + sql(f" AND {alias}.code IN ")
                    + params_list(spec.codes))

        self.presence.append(Presence(name, sql("SELECT EXISTS (SELECT 1 FROM (") + select
                                      + sql(") AS k WHERE ") + match("k") + sql(")"),
                                      "none of its codes occurs in a Condition"))
        return (sql("EXISTS (SELECT 1 FROM cond WHERE cond.pid = pat.id AND ") + match("cond")
                + sql(" AND cond.on_date <= ix.idx)"))

    def last_observation(self, name: str, spec: FhirLastObservation) -> Sql:
        alias = f"o{len(self.ctes)}"
        value = sql("json_extract_string(json, ") + param("$." + spec.value_path) + sql(")")
        match = (sql("coding ->> '$.system' = ") + param(spec.system)
                 + sql(" AND coding ->> '$.code' = ") + param(spec.code))
        codings = self.codings("Observation", ("$.effectiveDateTime", "$.effectivePeriod.start",
                                               "$.issued"), value)
        self.presence.append(Presence(name, sql("SELECT EXISTS (SELECT 1 FROM (") + codings
                                      + sql(") AS c WHERE ") + match + sql(")"),
                                      "its code does not occur in an Observation"))
        self.ctes.append(
            sql(f"{alias} AS (SELECT pid, value FROM (SELECT c.pid, c.value, ROW_NUMBER() OVER "
                "(PARTITION BY c.pid ORDER BY c.on_date DESC) AS rn FROM (") + codings
            + sql(") AS c JOIN ix ON ix.pid = c.pid WHERE ") + match
            + sql(" AND c.value IS NOT NULL AND c.on_date <= ix.idx) AS q WHERE rn = 1)"))
        self.joins.append(sql(f" LEFT JOIN {alias} ON {alias}.pid = pat.id"))
        out = sql(f"{alias}.value")
        return mapped(out, dict(spec.levels)) if spec.levels else out

    def column(self, name: str, spec: FhirColumn) -> Sql:
        died = sql("(pat.deceased IS NOT NULL AND pat.deceased <= ix.last_end)")
        if isinstance(spec, FhirAgeAtIndex):
            return age_in_years(sql("ix.idx"), sql("EXTRACT(YEAR FROM pat.birth)"),
                                sql("EXTRACT(MONTH FROM pat.birth)"),
                                sql("EXTRACT(DAY FROM pat.birth)"))
        if isinstance(spec, FhirSex):
            return mapped(sql("pat.gender"), dict(spec.levels))
        if isinstance(spec, FhirHasCondition):
            return bool_value(self.has_condition(name, spec), spec.levels)
        if isinstance(spec, FhirLastObservation):
            return self.last_observation(name, spec)
        if isinstance(spec, FhirDaysToDeathOrEnd):
            return sql("CAST((CASE WHEN ") + died + sql(" THEN pat.deceased ELSE ix.last_end "
                                                        "END) - ix.idx AS BIGINT)")
        assert isinstance(spec, FhirDeathEvent)
        return bool_value(died, spec.levels)


def fhir_part(source: FhirSource, catalogue: Schema) -> Part:
    """The patient-level relation of ``source``'s column definitions."""
    check_definitions(source.name, catalogue, list(source.columns))
    compiler = _Compiler(source)
    base = compiler.base()
    exprs = {name: compiler.column(name, source.columns[name]) for name in catalogue.names()}
    for resource in sorted(compiler.resources):
        if not any(Path(source.path).glob(f"{resource}*.ndjson")):
            raise SourceError(source.name, f"the export folder has no {resource}*.ndjson file")
    prefix = sql("WITH ") + join(", ", base + compiler.ctes) + sql(" ")
    body = (select_list(exprs) + sql(" FROM pat JOIN ix ON ix.pid = pat.id")
            + join("", compiler.joins))
    probes = tuple(Probe(f"{r} resources", compiler.files(r), {})
                   for r in sorted(compiler.resources))
    return Part(source.name, body, sql("pat.id"), probes, tuple(compiler.presence), prefix,
                "Patient.id")


__all__ = ["RESOURCES", "fhir_part"]
