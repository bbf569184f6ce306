"""The rules a study's analyses, schema, parties and thresholds obey, wherever they come from.

The study file (:mod:`securecalc.core.config`) and the job a node receives off the wire
(:func:`job_from_mapping`, fed by :mod:`securecalc.transport.codec`) are validated by the
same field types and functions defined here: the field types of :mod:`securecalc.core.model`
for names, addresses and thresholds, :data:`PartyList`, :data:`SchemaTable`,
:data:`AnalysisList` and :func:`check_engine_rules`. This module sits above both the analysis
record and the kinds registry, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, model_validator

from securecalc.core.analyses import COMMON_KEYS, Analysis
from securecalc.core.defaults import (
    ENGINES,
    MIN_CELL_COUNT,
    MIN_COHORT,
    MIN_PARTIES,
    MIN_PARTIES_WHY,
)
from securecalc.core.job import Job
from securecalc.core.kinds import KINDS, kind_of
from securecalc.core.limits import ANALYSES, NAME_CHARS, PARTIES, SCHEMA_COLUMNS, STUDY_COUNTS
from securecalc.core.model import (
    Address,
    AtLeastOne,
    Model,
    Name,
    checked,
    config_path,
    invalid,
    validate,
)
from securecalc.core.party import Party
from securecalc.core.privacy import parse_epsilon
from securecalc.core.schema import Schema, schema_from_mapping
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError

# -- parties -------------------------------------------------------------------------------

class PartyEntry(Model):
    """One ``[[party]]`` table (a study file) or party of a job: its name and address."""

    name: Name
    address: Address

    def record(self) -> Party:
        return Party(self.name, self.address)


def _parties(value: Any, info: ValidationInfo) -> tuple[Party, ...]:
    """A non-empty list, counted against the limits table before any entry is parsed; each
    entry a :class:`PartyEntry`; names unique."""
    field = info.field_name or "party"
    if isinstance(value, tuple) and all(isinstance(p, Party) for p in value):
        value = [{"name": p.name, "address": p.address} for p in value]
    if not isinstance(value, list | tuple) or not value:
        raise invalid("at least one [[party]] table is required")
    PARTIES.check(len(value), field, path=config_path(info))
    parties = tuple(validate(PartyEntry, raw, path=config_path(info), prefix=(field, i)).record()
                    for i, raw in enumerate(value))
    names = [p.name for p in parties]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise invalid(f"party names must be unique: {', '.join(duplicates)}")
    return parties


PartyList = Annotated[tuple[Party, ...], checked(_parties)]
"""``[[party]]``: at least one, within the limits table, names unique."""


def _engine(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"must be a non-empty string, got {value!r}")
    if value not in ENGINES:
        raise invalid(f"must be one of {', '.join(ENGINES)}, got {value!r}")
    return value


Engine = Annotated[str, checked(_engine)]


# -- schema and analyses ------------------------------------------------------------------

def _schema(value: Any, info: ValidationInfo) -> Schema:
    if isinstance(value, Schema):
        SCHEMA_COLUMNS.check(len(value.columns), "schema", path=config_path(info))
        return value
    if value is None:
        raise invalid("missing table [schema]", root=True)
    if not isinstance(value, Mapping):
        raise invalid("must be a table")
    return schema_from_mapping(value, path=config_path(info))


SchemaTable = Annotated[Schema, checked(_schema)]
"""``[schema.<column>]`` tables, each column checked (:mod:`securecalc.core.schema`)."""


def _analyses(value: Any, info: ValidationInfo) -> tuple[Analysis, ...]:
    path = config_path(info)
    schema = info.data.get("schema_")
    if schema is None:
        raise invalid("cannot be checked without a valid [schema]")
    if isinstance(value, tuple) and all(isinstance(a, Analysis) for a in value):
        value = [a.table() for a in value]
    if not isinstance(value, list) or not value:
        raise invalid("at least one [[analysis]] table is required")
    return parse_analyses(value, schema, path=path)


AnalysisList = Annotated[tuple[Analysis, ...], checked(_analyses)]
"""``[[analysis]]`` tables, each validated by its kind against the schema (declared before)."""


def check_engine_rules(engine: str, parties: Sequence[Party], schema: Schema,
                       analyses: Sequence[Analysis], *, path: str | None = None,
                       parties_field: str = "party") -> None:
    """Enough parties for ``engine``, and every analysis runnable on it at its size."""
    if len(parties) < MIN_PARTIES[engine]:
        raise ConfigError(f"engine {engine!r} needs at least {MIN_PARTIES[engine]} parties "
                          f"({MIN_PARTIES_WHY[engine]})", path=path, field=parties_field)
    for i, analysis in enumerate(analyses):
        kind = kind_of(analysis.kind)
        if engine not in kind.engines:
            raise ConfigError(f"kind {analysis.kind!r} cannot run on the {engine} engine "
                              f"(it runs on: {', '.join(sorted(kind.engines))})",
                              path=path, field=f"analysis[{i}].kind")
        try:
            kind.check_engine(analysis, schema, engine)
        except ConfigError as exc:
            raise ConfigError(str(exc), path=path, field=f"analysis[{i}]") from None


# -- the job as it travels ----------------------------------------------------------------

class JobModel(Model):
    """A job as a node receives it: the study's parties, schema, analyses and thresholds
    (the field types of a study file's ``[[party]]``, ``[schema]`` and ``[[analysis]]``),
    with its name and run id. The engine comes from the validation context
    (``{"engine": ...}``)."""

    study: Name
    job_id: Name
    parties: PartyList
    schema_: SchemaTable = Field(alias="schema")
    analyses: AnalysisList
    min_cell_count: AtLeastOne = MIN_CELL_COUNT
    min_cohort: AtLeastOne = MIN_COHORT

    @model_validator(mode="after")
    def _runs_on_engine(self, info: ValidationInfo) -> JobModel:
        engine = (info.context or {}).get("engine")
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}")
        check_engine_rules(engine, self.parties, self.schema_, self.analyses,
                           path=config_path(info), parties_field="parties")
        return self

    def record(self) -> Job:
        return Job(study=self.study, job_id=self.job_id,
                   parties=self.parties,
                   schema=self.schema_, analyses=self.analyses,
                   min_cell_count=self.min_cell_count, min_cohort=self.min_cohort)


def job_from_mapping(data: Mapping[str, Any], engine: str) -> Job:
    """Validate a job decoded from the wire (see :func:`job_to_mapping`) for ``engine``."""
    return validate(JobModel, data, context={"engine": engine}).record()


def job_to_mapping(job: Job) -> dict[str, Any]:
    """A job as plain data, in the keys :class:`JobModel` validates."""
    return {"study": job.study, "job_id": job.job_id,
            "parties": [{"name": p.name, "address": p.address} for p in job.parties],
            "schema": job.schema, "analyses": [a.table() for a in job.analyses],
            "min_cell_count": job.min_cell_count, "min_cohort": job.min_cohort}


def check_job(job: Job, engine: str) -> None:
    """Validate a job built in memory as carefully as a study file or a job off the wire."""
    job_from_mapping(job_to_mapping(job), engine)


# -- analysis tables ----------------------------------------------------------------------

def _field_error(exc: ConfigError, prefix: str, path: str | None) -> ConfigError:
    message = str(exc)
    if exc.field and message.startswith(f"field {exc.field!r}: "):
        message = message[len(f"field {exc.field!r}: "):]
    field_name = f"{prefix}.{exc.field}" if exc.field else prefix
    return type(exc)(message, path=path, field=field_name)


def analysis_from_mapping(raw: Any, *, index: int, schema: Schema | None = None,
                          path: str | None = None) -> Analysis:
    """Build an :class:`Analysis` from one ``[[analysis]]`` table.

    With ``schema`` the kind validates its keys fully; without it only the shared keys are
    checked (:func:`check_analyses` completes the validation).
    """
    prefix = f"analysis[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", path=path, field=prefix)
    for key in ("id", "kind", "column", "where"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"must be a non-empty string, got {value!r}",
                              path=path, field=f"{prefix}.{key}")
    if raw.get("id") is None:
        raise ConfigError("is required", path=path, field=f"{prefix}.id")
    for key in ("id", "kind", "column"):
        if isinstance(raw.get(key), str):
            NAME_CHARS.check(len(raw[key]), f"{prefix}.{key}", path=path)
    kind_name = raw.get("kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise ConfigError(f"unknown kind {kind_name!r} (known: {', '.join(KINDS)})",
                          path=path, field=f"{prefix}.kind")
    allowed = {*COMMON_KEYS, *kind.keys}
    shown = allowed if kind.dp_row_slots else allowed - {"epsilon"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown key for kind {kind_name!r} (allowed: "
                              f"{', '.join(sorted(shown))})", path=path,
                              field=f"{prefix}.{key}")
    for key in sorted(kind.required):
        if key not in raw:
            raise ConfigError(f"kind {kind_name!r} needs a {key}", path=path,
                              field=f"{prefix}.{key}")
    epsilon = _epsilon(raw.get("epsilon"), kind, path=path, field_name=f"{prefix}.epsilon")
    options = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
    if schema is not None:
        try:
            options = kind.parse(options, schema)
        except ConfigError as exc:
            raise _field_error(exc, prefix, path) from None
    columns = kind.columns(options) if schema is not None else ()
    column = options.pop("column", None)
    return Analysis(id=raw["id"], kind=kind.name, column=column, where=raw.get("where"),
                    options=options, epsilon=epsilon, columns=columns)


def _epsilon(value: Any, kind: Any, *, path: str | None, field_name: str) -> float | None:
    if value is None:
        return None
    try:
        epsilon = parse_epsilon(value)
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("field 'epsilon': "), path=path,
                          field=field_name) from None
    if kind.dp_row_slots is None:
        supported = ", ".join(k.name for k in KINDS.values() if k.dp_row_slots)
        raise ConfigError(f"kind {kind.name!r} cannot be released with differential privacy "
                          f"({kind.dp_unsupported}); kinds that can: {supported}",
                          path=path, field=field_name)
    return epsilon


def check_analyses(analyses: Sequence[Analysis], schema: Schema, *,
                   path: str | None = None, parsed: bool = False) -> None:
    """Check ids are unique, each kind's keys fit the schema, filters parse, and the counts
    of all analyses together stay within the limits table.

    ``parsed``: the analyses were just built by :func:`analysis_from_mapping` with this
    schema, so their kinds' keys need no second validation."""
    seen: set[str] = set()
    for i, analysis in enumerate(analyses):
        prefix = f"analysis[{i}]"
        if analysis.id in seen:
            raise ConfigError(f"duplicate analysis id {analysis.id!r}", path=path,
                              field=f"{prefix}.id")
        seen.add(analysis.id)
        if analysis.where is not None:
            try:
                parse_where(analysis.where, schema)
            except ConfigError as exc:
                raise type(exc)(str(exc), path=path, field=f"{prefix}.where") from None
        if parsed:
            continue
        reparsed = analysis_from_mapping(analysis.table(), index=i, schema=schema, path=path)
        if reparsed.table() != analysis.table():
            raise ConfigError("is not in its validated form", path=path, field=prefix)
    STUDY_COUNTS.check(sum(kind_of(a.kind).counts(a.table(), schema) for a in analyses),
                       "analysis", path=path,
                       hint="histogram bins, crosstab cells and survival time points per group")


def parse_analyses(raws: Sequence[Any], schema: Schema, *,
                   path: str | None = None) -> tuple[Analysis, ...]:
    """Every ``[[analysis]]`` table, fully validated against the schema."""
    ANALYSES.check(len(raws), "analysis", path=path)
    analyses = tuple(analysis_from_mapping(raw, index=i, schema=schema, path=path)
                     for i, raw in enumerate(raws))
    check_analyses(analyses, schema, path=path, parsed=True)
    return analyses
