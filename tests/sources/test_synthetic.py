"""`securecalc synth --format omop|fhir`: the same patients as the CSV cohort."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from securecalc.cli import main
from securecalc.sources.synthetic import OMOP_TABLES


def test_synth_writes_an_omop_extract_per_site(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--format", "omop", "--sites", "2", "--rows", "30",
                 "--out", str(tmp_path)]) == 0
    folders = capsys.readouterr().out.split()
    assert [Path(f).name for f in folders] == ["hospital-a", "hospital-b"]
    for folder in map(Path, folders):
        assert {p.name for p in folder.iterdir()} == {f"{t}.csv" for t in OMOP_TABLES}
        with (folder / "person.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == [c for c, _ in OMOP_TABLES["person"]]
        assert [int(r["person_id"]) for r in rows] == list(range(1, 31))
        assert {r["gender_concept_id"] for r in rows} <= {"8507", "8532"}


def test_synth_writes_a_fhir_export_per_site(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--format", "fhir", "--sites", "1", "--rows", "25",
                 "--out", str(tmp_path)]) == 0
    folder = Path(capsys.readouterr().out.split()[0])
    names = {p.name for p in folder.iterdir()}
    assert names == {"Patient.ndjson", "Encounter.ndjson", "Condition.ndjson",
                     "Observation.ndjson"}
    patients = [json.loads(line) for line in (folder / "Patient.ndjson").open()]
    assert len(patients) == 25 and all(p["resourceType"] == "Patient" for p in patients)


def test_synth_refuses_no_sites_for_every_format(tmp_path: Path) -> None:
    for fmt in ("omop", "fhir"):
        assert main(["synth", "--format", fmt, "--sites", "0", "--out", str(tmp_path)]) == 1
