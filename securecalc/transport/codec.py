"""All conversion between protobuf messages and domain objects, in one place."""

from __future__ import annotations

import json

from securecalc.core.analyses import analysis_from_mapping
from securecalc.core.config import Party
from securecalc.core.job import Job
from securecalc.core.limits import ANALYSES, PARTIES, SCHEMA_COLUMNS
from securecalc.core.schema import Column, Schema, column_from_mapping
from securecalc.errors import ConfigError
from securecalc.transport.proto import study_pb2


def column_to_proto(column: Column) -> study_pb2.ColumnSpec:
    spec = study_pb2.ColumnSpec(name=column.name, type=column.type, levels=column.levels)
    if column.is_numeric:
        assert column.min is not None and column.max is not None
        spec.min, spec.max = column.min, column.max
    return spec


def column_from_proto(spec: study_pb2.ColumnSpec) -> Column:
    raw: dict[str, object] = {"type": spec.type}
    if spec.type == "category":
        raw["levels"] = list(spec.levels)
    else:
        raw["min"], raw["max"] = spec.min, spec.max
    return column_from_mapping(spec.name, raw)


def job_to_proto(job: Job) -> study_pb2.JobSpec:
    return study_pb2.JobSpec(
        study=job.study,
        job_id=job.job_id,
        parties=[study_pb2.PartyRef(name=p.name, address=p.address) for p in job.parties],
        schema=[column_to_proto(c) for c in job.schema],
        analyses=[study_pb2.AnalysisSpec(id=a.id, kind=a.kind, table_json=a.to_json())
                  for a in job.analyses],
        min_cell_count=job.min_cell_count,
        min_cohort=job.min_cohort,
    )


def job_from_proto(spec: study_pb2.JobSpec, engine: str) -> Job:
    """Decode and validate a job sent by a coordinator (as strictly as a study file)."""
    if not spec.job_id or not spec.study:
        raise ConfigError("job without id or study name")
    # counts first: nothing is decoded from a job larger than the limits table allows
    PARTIES.check(len(spec.parties), "parties")
    ANALYSES.check(len(spec.analyses), "analyses")
    SCHEMA_COLUMNS.check(len(spec.schema), "schema")
    columns: dict[str, Column] = {}
    for column_spec in spec.schema:
        if column_spec.name in columns:
            raise ConfigError(f"duplicate column {column_spec.name!r} in job schema")
        columns[column_spec.name] = column_from_proto(column_spec)
    schema = Schema(columns)
    analyses = []
    for index, wire in enumerate(spec.analyses):
        try:
            table = json.loads(wire.table_json)
        except (ValueError, RecursionError):  # json recurses once per nesting level
            raise ConfigError(f"analysis {wire.id!r} is not valid JSON") from None
        if not isinstance(table, dict) or table.get("id") != wire.id \
                or table.get("kind") != wire.kind:
            raise ConfigError(f"analysis {wire.id!r} does not match its table")
        analyses.append(analysis_from_mapping(table, index=index, schema=schema))
    job = Job(
        study=spec.study,
        job_id=spec.job_id,
        parties=tuple(Party(p.name, p.address) for p in spec.parties),
        schema=schema,
        analyses=tuple(analyses),
        min_cell_count=spec.min_cell_count,
        min_cohort=spec.min_cohort,
    )
    job.check(engine)
    return job


def ckks_params_to_proto(params) -> study_pb2.CkksParams:  # type: ignore[no-untyped-def]
    return study_pb2.CkksParams(
        poly_modulus_degree=params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        scale_bits=params.scale_bits,
    )


def ckks_params_from_proto(spec: study_pb2.CkksParams):  # type: ignore[no-untyped-def]
    from securecalc.engines.ckks.layout import CkksParams

    return CkksParams(
        poly_modulus_degree=spec.poly_modulus_degree,
        coeff_mod_bit_sizes=tuple(spec.coeff_mod_bit_sizes),
        scale_bits=spec.scale_bits,
    )
