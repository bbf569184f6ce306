"""All conversion between protobuf messages and domain objects, in one place."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from securecalc.core.job import Job
from securecalc.core.limits import ANALYSES, PARTIES, SCHEMA_COLUMNS
from securecalc.core.schema import Column, column_from_mapping
from securecalc.core.study_model import job_from_mapping
from securecalc.errors import ConfigError
from securecalc.transport.proto import study_pb2

if TYPE_CHECKING:
    from securecalc.engines.ckks.layout import CkksParams


def column_to_proto(column: Column) -> study_pb2.ColumnSpec:
    spec = study_pb2.ColumnSpec(name=column.name, type=column.type, levels=column.levels)
    if column.is_numeric:
        assert column.min is not None and column.max is not None
        spec.min, spec.max = column.min, column.max
    return spec


def column_from_proto(spec: study_pb2.ColumnSpec) -> Column:
    return column_from_mapping(spec.name, column_table(spec))


def column_table(spec: study_pb2.ColumnSpec) -> dict[str, Any]:
    """A column spec as its ``[schema.<column>]`` table."""
    raw: dict[str, Any] = {"type": spec.type}
    if spec.type == "category":
        raw["levels"] = list(spec.levels)
    else:
        raw["min"], raw["max"] = spec.min, spec.max
    return raw


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
    """Decode and validate a job sent by a coordinator, with the model that validates a
    study file (:class:`securecalc.core.study_model.JobModel`)."""
    # counts first: nothing is decoded from a job larger than the limits table allows
    PARTIES.check(len(spec.parties), "parties")
    ANALYSES.check(len(spec.analyses), "analyses")
    SCHEMA_COLUMNS.check(len(spec.schema), "schema")
    return job_from_mapping(job_mapping(spec), engine)


def job_mapping(spec: study_pb2.JobSpec) -> dict[str, Any]:
    """A job spec as plain data in the keys of ``JobModel``."""
    schema: dict[str, Any] = {}
    for column_spec in spec.schema:
        if column_spec.name in schema:
            raise ConfigError(f"duplicate column {column_spec.name!r} in job schema")
        schema[column_spec.name] = column_table(column_spec)
    analyses = []
    for wire in spec.analyses:
        try:
            table = json.loads(wire.table_json)
        except (ValueError, RecursionError):  # json recurses once per nesting level
            raise ConfigError(f"analysis {wire.id!r} is not valid JSON") from None
        if not isinstance(table, dict) or table.get("id") != wire.id \
                or table.get("kind") != wire.kind:
            raise ConfigError(f"analysis {wire.id!r} does not match its table")
        analyses.append(table)
    return {"study": spec.study, "job_id": spec.job_id,
            "parties": [{"name": p.name, "address": p.address} for p in spec.parties],
            "schema": schema, "analyses": analyses,
            "min_cell_count": spec.min_cell_count, "min_cohort": spec.min_cohort}


def ckks_params_to_proto(params: CkksParams) -> study_pb2.CkksParams:
    return study_pb2.CkksParams(
        poly_modulus_degree=params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        scale_bits=params.scale_bits,
    )


def ckks_params_from_proto(spec: study_pb2.CkksParams) -> CkksParams:
    from securecalc.engines.ckks.layout import CkksParams

    return CkksParams(
        poly_modulus_degree=spec.poly_modulus_degree,
        coeff_mod_bit_sizes=tuple(spec.coeff_mod_bit_sizes),
        scale_bits=spec.scale_bits,
    )
