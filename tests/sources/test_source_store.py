"""The node's store of ``[[source]]`` rows: a study gets the columns it reads, checked again
first; a source that stopped being readable refuses studies with a fixed text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from securecalc.core.analyses import Analysis
from securecalc.core.job import Job
from securecalc.core.source_model import parse_sources
from securecalc.core.table import load_table
from securecalc.errors import PolicyError
from securecalc.node.source_store import ADMITTED_KEPT, SourceStore, unreadable_message
from securecalc.sources.synthetic import synth_omop_source
from securecalc.synth import synth_schema
from tests.sources.conftest import Cohort
from tests.sources.rows import assert_same_rows


def test_a_study_reads_its_columns_and_an_unreadable_source_is_refused(
        tmp_path: Path, cohort: Cohort) -> None:
    copy = tmp_path / "omop.duckdb"
    shutil.copy(cohort.duckdb, copy)
    store = SourceStore(parse_sources([synth_omop_source("cdm", duckdb=copy)]), synth_schema(),
                        "hospital-a", batch_rows=64)
    store.load()
    job = Job("s", "j", (), synth_schema(), (Analysis("m", "mean", "bmi"),))
    store.admit(job)
    table = store.table_for(job)
    expected = load_table(cohort.csv, synth_schema(), ["bmi"])
    assert_same_rows(table, expected)
    copy.unlink()
    with pytest.raises(PolicyError) as refused:
        store.admit(job)
    assert str(refused.value) == unreadable_message("hospital-a")


def test_a_local_phase_without_admission_checks_the_rows_again(
        tmp_path: Path, cohort: Cohort) -> None:
    copy = tmp_path / "omop.duckdb"
    shutil.copy(cohort.duckdb, copy)
    store = SourceStore(parse_sources([synth_omop_source("cdm", duckdb=copy)]), synth_schema(),
                        "hospital-a")
    store.load()
    jobs = [Job("s", f"j{i}", (), synth_schema(), (Analysis("m", "mean", "bmi"),))
            for i in range(ADMITTED_KEPT + 1)]
    for job in jobs:  # admitted, then (say) refused by approval: never computed
        store.admit(job)
    copy.unlink()
    # the oldest admission was forgotten: its local phase checks the rows, and is refused
    with pytest.raises(PolicyError) as refused, store.data_for(jobs[0]):
        pass
    assert str(refused.value) == unreadable_message("hospital-a")
