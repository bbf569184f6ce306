"""A node on ``[[source]]`` tables computes a study's local statistics in the database: the
inputs it gives the engines equal those of the same rows loaded from the CSV file, also when
the study declares a category's levels in another order than the node's catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from securecalc.core.catalogue import study_table
from securecalc.core.job import Job
from securecalc.core.local import TableData, local_contributions
from securecalc.core.schema import Column, Schema
from securecalc.core.source_model import parse_sources
from securecalc.core.study_model import analysis_from_mapping
from securecalc.core.table import load_table
from securecalc.node.source_store import SourceStore
from securecalc.sources.pushdown import SourceData
from securecalc.sources.synthetic import synth_omop_source
from securecalc.synth import synth_schema
from tests.sources.conftest import Cohort

ANALYSES = (
    {"id": "m", "kind": "mean", "column": "bmi", "where": "age >= 40"},
    {"id": "v", "kind": "variance", "column": "sbp"},
    {"id": "t", "kind": "crosstab", "row": "sex", "col": "diabetes"},
    {"id": "l", "kind": "linreg", "y": "sbp", "x": ["age", "sex", "bmi"]},
    {"id": "q", "kind": "median", "column": "age", "where": "sex == 'F'"},
)


def _study_schema() -> Schema:
    """The synthetic schema with every category's levels reversed."""
    columns = {}
    for column in synth_schema():
        if column.type == "category":
            column = Column(column.name, "category", levels=tuple(reversed(column.levels)))
        columns[column.name] = column
    return Schema(columns)


def test_pushed_down_inputs_equal_the_file_rows(tmp_path: Path, cohort: Cohort) -> None:
    schema = _study_schema()
    analyses = tuple(analysis_from_mapping(a, index=i, schema=schema)
                     for i, a in enumerate(ANALYSES))
    job = Job("s", "j", (), schema, analyses)
    store = SourceStore(parse_sources([synth_omop_source("cdm", duckdb=cohort.duckdb)]),
                        synth_schema(), "hospital-a")
    store.load()
    store.admit(job)
    rows = load_table(cohort.csv, synth_schema())
    expected = local_contributions(job, TableData(study_table(rows, schema, job.columns())),
                                   "mpc")
    with store.data_for(job) as data:
        assert isinstance(data, SourceData)  # the database computes the statistics
        pushed = local_contributions(job, data, "mpc")
    for got, want in zip(pushed, expected, strict=True):
        if isinstance(want.local, np.ndarray):  # an order statistic's sorted values
            assert np.array_equal(got.local, want.local), want.analysis.id
        else:
            assert got.local == want.local, want.analysis.id
