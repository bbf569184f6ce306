"""What a node's ``[[source]]`` tables declare: where its rows live and how each catalogue
column is derived from them (pydantic v2 models; unknown keys are refused).

Kinds: ``file`` (CSV with a declared delimiter, Parquet, NDJSON), ``postgres`` (a table, a
view or a read-only query), ``omop`` (OMOP CDM v5.4 on PostgreSQL or DuckDB) and ``fhir`` (a
FHIR R4 Bulk Data export folder). Passwords never live in node.toml: ``password_file`` or
``password_env`` names where to find one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from securecalc.core.readonly_sql import check_select_only
from securecalc.errors import ConfigError

SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
ConceptId = Annotated[int, Field(ge=0, lt=2**31)]
Level = Annotated[str, Field(min_length=1)]
#: a dotted FHIR element path with optional list indexes, e.g. ``valueQuantity.value``
_STEP = r"[A-Za-z][A-Za-z0-9]*(\[\d+\])?"
ValuePath = Annotated[str, Field(pattern=rf"^{_STEP}(\.{_STEP})*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BoolLevels(_Model):
    """Levels of a category column derived from a yes/no fact."""

    true: Level
    false: Level


# --------------------------------------------------------------------------- connections


class PostgresConnection(_Model):
    """A PostgreSQL connection; the password comes from a file or an environment variable."""

    host: str = Field(min_length=1)
    port: int = Field(5432, ge=1, le=65535)
    database: Identifier
    user: Identifier
    password_file: Path | None = None
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "prefer")
    connect_timeout: int = Field(10, ge=1, le=600)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError("a password must not be written in node.toml: use password_file "
                             "(a file readable by the node only) or password_env")
        return data

    @model_validator(mode="after")
    def _one_password_source(self) -> PostgresConnection:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        return self

    def same_server(self, other: PostgresConnection) -> bool:
        return self.model_dump() == other.model_dump()


def _connection_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in PostgresConnection.model_fields if key in data}


# --------------------------------------------------------------------------- plain tables


class FileSource(_Model):
    """A CSV, Parquet or NDJSON file (or glob) read by DuckDB."""

    kind: Literal["file"]
    name: SourceName
    format: Literal["csv", "parquet", "ndjson"]
    path: Path
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    #: catalogue column -> file column; a catalogue column not listed reads the same name
    columns: dict[str, Identifier] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _delimiter_for_csv(self) -> FileSource:
        if self.format == "csv" and self.delimiter is None:
            raise ValueError("a csv source needs its delimiter, e.g. delimiter = \",\"")
        if self.format != "csv" and self.delimiter is not None:
            raise ValueError("only a csv source takes a delimiter")
        return self


class PostgresSource(PostgresConnection):
    """A PostgreSQL table, view or read-only query."""

    kind: Literal["postgres"]
    name: SourceName
    schema_: Identifier | None = Field(None, alias="schema")
    table: Identifier | None = None
    view: Identifier | None = None
    query: str | None = Field(None, min_length=1)
    columns: dict[str, Identifier] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_relation(self) -> PostgresSource:
        given = [key for key in ("table", "view", "query") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of table, view or query")
        if self.query is not None and self.schema_ is not None:
            raise ValueError("schema applies to a table or view, not to a query")
        return self

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str | None) -> str | None:
        if query is not None:
            check_select_only(query)
        return query

    @property
    def connection(self) -> PostgresConnection:
        return PostgresConnection(**_connection_fields(self.model_dump()))


# --------------------------------------------------------------------------- OMOP CDM


class OmopAgeAtIndex(_Model):
    """Whole years between the birth date and the index date."""

    omop: Literal["age_at_index"]


class OmopSex(_Model):
    """``person.gender_concept_id`` mapped to levels; unmapped concepts are missing."""

    omop: Literal["sex"]
    levels: dict[str, Level]

    @field_validator("levels")
    @classmethod
    def _concept_keys(cls, levels: dict[str, str]) -> dict[str, str]:
        if not levels or not all(re.fullmatch(r"\d{1,10}", key) for key in levels):
            raise ValueError("levels maps gender concept ids (e.g. \"8507\") to levels")
        return levels


class OmopHasCondition(_Model):
    """Whether a condition with one of ``concept_ids`` started on or before the index date."""

    omop: Literal["has_condition"]
    concept_ids: list[ConceptId] = Field(min_length=1)
    levels: BoolLevels | None = None


class OmopHasDrug(_Model):
    """Whether a drug exposure with one of ``concept_ids`` started on or before the index."""

    omop: Literal["has_drug"]
    concept_ids: list[ConceptId] = Field(min_length=1)
    levels: BoolLevels | None = None


class OmopLastMeasurement(_Model):
    """``value_as_number`` of the latest measurement of ``concept_id`` on or before the index."""

    omop: Literal["last_measurement_value"]
    concept_id: ConceptId


class OmopDaysToDeathOrEnd(_Model):
    """Days from the index date to death (within observation) or the end of observation."""

    omop: Literal["days_to_death_or_end_of_observation"]


class OmopDeathEvent(_Model):
    """1 if the person died within the observation period, else 0 (or the mapped levels)."""

    omop: Literal["death_event"]
    levels: BoolLevels | None = None


OmopColumn = Annotated[
    OmopAgeAtIndex | OmopSex | OmopHasCondition | OmopHasDrug | OmopLastMeasurement
    | OmopDaysToDeathOrEnd | OmopDeathEvent,
    Field(discriminator="omop"),
]


class OmopSource(_Model):
    """An OMOP CDM v5.4 schema on PostgreSQL or in a DuckDB database file (read only).

    The index date is each person's first ``observation_period_start_date``, or a declared
    date; a person without an observation period is not a row.
    """

    kind: Literal["omop"]
    name: SourceName
    schema_: Identifier | None = Field(None, alias="schema")
    duckdb: Path | None = None
    postgres: PostgresConnection | None = None
    index: Literal["observation_period_start"] | dt.date = "observation_period_start"
    columns: dict[str, OmopColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_engine(self) -> OmopSource:
        if (self.duckdb is None) == (self.postgres is None):
            raise ValueError("give exactly one of duckdb (a database file) or [source.postgres]")
        return self


# --------------------------------------------------------------------------- FHIR R4


class FhirAgeAtIndex(_Model):
    """Whole years between ``Patient.birthDate`` and the index date."""

    fhir: Literal["age_at_index"]


class FhirSex(_Model):
    """``Patient.gender`` (male, female, other, unknown) mapped to levels; unmapped = missing."""

    fhir: Literal["sex"]
    levels: dict[str, Level] = Field(min_length=1)


class FhirHasCondition(_Model):
    """Whether a Condition coded ``system`` | one of ``codes`` had its onset on or before the
    index date."""

    fhir: Literal["has_condition"]
    system: str = Field(min_length=1)
    codes: list[str] = Field(min_length=1)
    levels: BoolLevels | None = None


class FhirLastObservation(_Model):
    """``value_path`` of the latest Observation coded ``system`` | ``code`` effective on or
    before the index date; ``levels`` maps coded values to levels."""

    fhir: Literal["last_observation_value"]
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    value_path: ValuePath = "valueQuantity.value"
    levels: dict[str, Level] | None = None


class FhirDaysToDeathOrEnd(_Model):
    """Days from the index date to ``Patient.deceasedDateTime`` or the last Encounter's end,
    whichever comes first."""

    fhir: Literal["days_to_death_or_end_of_observation"]


class FhirDeathEvent(_Model):
    """1 if ``Patient.deceasedDateTime`` is on or before the last Encounter's end, else 0."""

    fhir: Literal["death_event"]
    levels: BoolLevels | None = None


FhirColumn = Annotated[
    FhirAgeAtIndex | FhirSex | FhirHasCondition | FhirLastObservation | FhirDaysToDeathOrEnd
    | FhirDeathEvent,
    Field(discriminator="fhir"),
]


class FhirSource(_Model):
    """A FHIR R4 Bulk Data export folder: ``Patient*.ndjson``, ``Encounter*.ndjson``,
    ``Condition*.ndjson``, ``Observation*.ndjson``.

    The index date is a patient's first ``Encounter.period.start``, or a declared date; a
    patient without an Encounter is not a row.
    """

    kind: Literal["fhir"]
    name: SourceName
    path: Path
    index: Literal["first_encounter_start"] | dt.date = "first_encounter_start"
    columns: dict[str, FhirColumn] = Field(min_length=1)


Source = Annotated[FileSource | PostgresSource | OmopSource | FhirSource,
                   Field(discriminator="kind")]


class Sources(_Model):
    """The node's ``[[source]]`` list."""

    source: list[Source] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _distinct_names(self) -> Sources:
        names = [s.name for s in self.source]
        if len(set(names)) != len(names):
            raise ValueError("source names must be distinct")
        return self


def _resolve(source: Source, base: Path) -> Source:
    """``source`` with relative file paths taken from ``base`` (node.toml's folder)."""
    updates: dict[str, Path] = {}
    for key in ("path", "duckdb", "password_file"):
        value = getattr(source, key, None)
        if isinstance(value, Path) and not value.is_absolute():
            updates[key] = base / value
    if isinstance(source, OmopSource) and source.postgres is not None:
        pw = source.postgres.password_file
        if pw is not None and not pw.is_absolute():
            updates_pg = source.postgres.model_copy(update={"password_file": base / pw})
            source = source.model_copy(update={"postgres": updates_pg})
    return source.model_copy(update=updates) if updates else source


def _tags(union: Any, key: str) -> set[str]:
    members = union.__origin__.__args__ if hasattr(union, "__origin__") else ()
    return {arg for member in members for arg in member.model_fields[key].annotation.__args__}


def _field_name(loc: Sequence[int | str]) -> str:
    """``source[0].columns.age.levels`` from a pydantic error location (tags dropped)."""
    kinds = {"file", "postgres", "omop", "fhir"}
    column_tags = _tags(OmopColumn, "omop") | _tags(FhirColumn, "fhir")
    parts: list[str] = []
    for i, part in enumerate(loc):
        text = str(part)
        if (i == 2 and text in kinds) or (i >= 4 and loc[i - 2] == "columns"
                                         and text in column_tags):
            continue
        if text.startswith("function-"):
            continue
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        else:
            parts.append(text)
    return ".".join(parts)


def parse_sources(raw: Sequence[Mapping[str, Any]], *, path: str | Path | None = None,
                  base_dir: Path | None = None) -> list[Source]:
    """The parsed ``[[source]]`` tables of node.toml; :class:`ConfigError` names the field."""
    try:
        parsed = Sources.model_validate({"source": list(raw)}, by_alias=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = _field_name(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(message, path=None if path is None else str(path),
                          field=field) from None
    base = base_dir if base_dir is not None else (Path(path).parent if path else Path.cwd())
    return [_resolve(source, base) for source in parsed.source]


__all__ = ["BoolLevels", "FhirColumn", "FhirSource", "FileSource", "OmopColumn", "OmopSource",
           "PostgresConnection", "PostgresSource", "Source", "Sources", "parse_sources"]
