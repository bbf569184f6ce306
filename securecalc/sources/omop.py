"""OMOP CDM v5.4 columns compiled to SQL that runs on PostgreSQL and on DuckDB alike.

One row per person with an observation period. The index date is the start of the person's
first observation period, or the declared date; "before index" means on or before it.
"""

from __future__ import annotations

import datetime as dt

from securecalc.core.schema import Schema
from securecalc.core.source_model import (
    OmopAgeAtIndex,
    OmopColumn,
    OmopDaysToDeathOrEnd,
    OmopDeathEvent,
    OmopHasCondition,
    OmopHasDrug,
    OmopLastMeasurement,
    OmopSex,
    OmopSource,
)
from securecalc.sources.derived import age_in_years, bool_value, mapped
from securecalc.sources.relation import Part, Presence, Probe, check_definitions, select_list
from securecalc.sources.sql import Sql, ident, join, param, params_list, sql

#: the OMOP columns each kind of column definition reads, per table
_NEEDS: dict[type, dict[str, tuple[str, ...]]] = {
    OmopAgeAtIndex: {"person": ("year_of_birth", "month_of_birth", "day_of_birth")},
    OmopSex: {"person": ("gender_concept_id",)},
    OmopHasCondition: {"condition_occurrence": ("person_id", "condition_concept_id",
                                                "condition_start_date")},
    OmopHasDrug: {"drug_exposure": ("person_id", "drug_concept_id",
                                    "drug_exposure_start_date")},
    OmopLastMeasurement: {"measurement": ("person_id", "measurement_id",
                                          "measurement_concept_id", "measurement_date",
                                          "value_as_number")},
    OmopDaysToDeathOrEnd: {"death": ("person_id", "death_date")},
    OmopDeathEvent: {"death": ("person_id", "death_date")},
}
_ALWAYS = {"person": ("person_id",),
           "observation_period": ("person_id", "observation_period_id",
                                  "observation_period_start_date",
                                  "observation_period_end_date")}


class _Compiler:
    def __init__(self, source: OmopSource):
        self.source = source
        self.schema = source.schema_
        self.ctes: list[Sql] = []
        self.joins: list[Sql] = []
        self.presence: list[Presence] = []
        self.death = False

    def table(self, name: str) -> Sql:
        return ident(self.schema, name) if self.schema else ident(name)

    def index(self) -> Sql:
        if isinstance(self.source.index, dt.date):
            return sql("CAST(") + param(self.source.index) + sql(" AS DATE)")
        return sql("op.observation_period_start_date")

    def observation(self) -> Sql:
        return (sql("ix AS (SELECT person_id, observation_period_end_date AS op_end, ")
                + self.index() + sql(" AS idx FROM (SELECT person_id, "
                "observation_period_start_date, observation_period_end_date, ROW_NUMBER() "
                "OVER (PARTITION BY person_id ORDER BY observation_period_start_date, "
                "observation_period_id) AS rn FROM ") + self.table("observation_period")
                + sql(") AS op WHERE rn = 1)"))

    def needs_death(self) -> None:
        if not self.death:
            self.death = True
            self.ctes.append(sql("dth AS (SELECT person_id, MIN(death_date) AS death_date FROM ")
                             + self.table("death") + sql(" GROUP BY person_id)"))
            self.joins.append(sql(" LEFT JOIN dth ON dth.person_id = p.person_id"))

    def exists(self, name: str, table: str, concept: str, start: str,
               concepts: list[int]) -> Sql:
        self.presence.append(Presence(
            name, sql("SELECT EXISTS (SELECT 1 FROM ") + self.table(table) + sql(" WHERE ")
            + ident(concept) + sql(" IN ") + params_list(concepts) + sql(")"),
            f"none of its concept ids occurs in {table}.{concept}"))
        return (sql("EXISTS (SELECT 1 FROM ") + self.table(table) + sql(" AS e WHERE "
                "e.person_id = p.person_id AND e.") + ident(concept) + sql(" IN ")
                + params_list(concepts) + sql(" AND e.") + ident(start) + sql(" <= ix.idx)"))

    def column(self, name: str, spec: OmopColumn) -> Sql:
        died = sql("(dth.death_date IS NOT NULL AND dth.death_date <= ix.op_end)")
        if isinstance(spec, OmopAgeAtIndex):
            return age_in_years(sql("ix.idx"), sql("p.year_of_birth"),
                                sql("COALESCE(p.month_of_birth, 1)"),
                                sql("COALESCE(p.day_of_birth, 1)"))
        if isinstance(spec, OmopSex):
            return mapped(sql("p.gender_concept_id"),
                          {int(k): v for k, v in spec.levels.items()})
        if isinstance(spec, OmopHasCondition):
            return bool_value(self.exists(name, "condition_occurrence", "condition_concept_id",
                                          "condition_start_date", spec.concept_ids),
                              spec.levels)
        if isinstance(spec, OmopHasDrug):
            return bool_value(self.exists(name, "drug_exposure", "drug_concept_id",
                                          "drug_exposure_start_date", spec.concept_ids),
                              spec.levels)
        if isinstance(spec, OmopLastMeasurement):
            alias = f"m{len(self.ctes)}"
            concept = param(spec.concept_id)
            self.presence.append(Presence(
                name, sql("SELECT EXISTS (SELECT 1 FROM ") + self.table("measurement")
                + sql(" WHERE measurement_concept_id = ") + concept + sql(")"),
                "its concept id does not occur in measurement.measurement_concept_id"))
            self.ctes.append(
                sql(f"{alias} AS (SELECT person_id, value_as_number FROM (SELECT m.person_id, "
                    "m.value_as_number, ROW_NUMBER() OVER (PARTITION BY m.person_id ORDER BY "
                    "m.measurement_date DESC, m.measurement_id DESC) AS rn FROM ")
                + self.table("measurement") + sql(" AS m JOIN ix ON ix.person_id = m.person_id "
                                                  "WHERE m.measurement_concept_id = ")
                + concept + sql(" AND m.value_as_number IS NOT NULL AND m.measurement_date "
                                "<= ix.idx) AS q WHERE rn = 1)"))
            self.joins.append(sql(f" LEFT JOIN {alias} ON {alias}.person_id = p.person_id"))
            return sql(f"{alias}.value_as_number")
        if isinstance(spec, OmopDaysToDeathOrEnd):
            self.needs_death()
            return (sql("CAST((CASE WHEN ") + died + sql(" THEN dth.death_date ELSE ix.op_end "
                                                         "END) - ix.idx AS BIGINT)"))
        assert isinstance(spec, OmopDeathEvent)
        self.needs_death()
        return bool_value(died, spec.levels)

    def probes(self) -> tuple[Probe, ...]:
        tables: dict[str, dict[str, tuple[str, ...]]] = {
            t: {c: () for c in cols} for t, cols in _ALWAYS.items()}
        for name, spec in self.source.columns.items():
            for table, columns in _NEEDS[type(spec)].items():
                for column in columns:
                    have = tables.setdefault(table, {}).get(column, ())
                    tables[table][column] = have + (name,)
        return tuple(Probe(f"table {t}", self.table(t), cols) for t, cols in tables.items())


def omop_part(source: OmopSource, catalogue: Schema) -> Part:
    """The person-level relation of ``source``'s column definitions."""
    check_definitions(source.name, catalogue, list(source.columns))
    compiler = _Compiler(source)
    ctes = [compiler.observation()]
    exprs = {name: compiler.column(name, source.columns[name]) for name in catalogue.names()}
    prefix = sql("WITH ") + join(", ", ctes + compiler.ctes) + sql(" ")
    body = (select_list(exprs) + sql(" FROM ") + compiler.table("person")
            + sql(" AS p JOIN ix ON ix.person_id = p.person_id") + join("", compiler.joins))
    return Part(source.name, body, sql("p.person_id"), compiler.probes(),
                tuple(compiler.presence), prefix, "person_id")


__all__ = ["omop_part"]
