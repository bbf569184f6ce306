"""Refusals as an oracle, attacked in process through the real command line's code.

Threat: the coordinator may send any study, any number of times, and reads every error. Two
sets of nodes hold the same data except one patient's BMI at hospital-b (57.25 in one, 40.0 in
the other, both inside hospital-b's catalogue). For every schema mismatch a coordinator can
try, both answer ``securecalc study run`` with the same exit status and byte for byte the same
error, and the error quotes the study and the published catalogue only. Bisecting the
patient's BMI by narrowing the study's bounds, which used to recover it in about 19 studies,
then learns nothing.

Every node publishes the same declarations (a study must restate them; hospital-a and
hospital-c offer one column more, ``height``). When every node refuses, which one answers
first varies from run to run, so node names in the errors are compared as ``hospital-?``.

``securecalc study run`` runs as :func:`securecalc.cli.main` in this process, its study over
the in-memory network (the same assertions as tests/system/test_refusals.py did).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import securecalc.coordinator.study as study_module
from securecalc import cli
from securecalc.core.config import load_node_config
from tests.inprocess.conftest import InProcessStudy

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
PATIENT = {"attack": 57.25, "control": 40.0}

CATALOGUE_AC = """
[catalogue.age]
type = "int"
min = 18
max = 95

[catalogue.bmi]
type = "float"
min = 15.0
max = 60.0

[catalogue.sex]
type = "category"
levels = ["F", "M", "U"]

[catalogue.height]
type = "int"
min = 100
max = 220

[catalogue.score]
type = "int"
min = 0
max = 10
"""
CATALOGUE_B = """
[catalogue.age]
type = "int"
min = 18
max = 95

[catalogue.bmi]
type = "float"
min = 15.0
max = 60.0

[catalogue.sex]
type = "category"
levels = ["F", "M", "U"]

[catalogue.score]
type = "int"
min = 0
max = 10
"""
COUNT_BMI = '[[analysis]]\nid = "n_bmi"\nkind = "count"\ncolumn = "bmi"\n'


def schema(bmi: tuple[float, float] = (15.0, 60.0), sex: tuple[str, ...] = ("F", "M", "U"),
           score: str = "int") -> str:
    """The study's schema; the defaults restate every node's catalogue."""
    levels = ", ".join(f'"{level}"' for level in sex)
    return (f'[schema.age]\ntype = "int"\nmin = 18\nmax = 95\n\n'
            f'[schema.bmi]\ntype = "float"\nmin = {bmi[0]!r}\nmax = {bmi[1]!r}\n\n'
            f'[schema.sex]\ntype = "category"\nlevels = [{levels}]\n\n'
            f'[schema.height]\ntype = "int"\nmin = 100\nmax = 220\n\n'
            f'[schema.score]\ntype = "{score}"\nmin = 0\nmax = 10\n')


def site_csv(path: Path, *, hospital_b: bool, patient_bmi: float = 30.0) -> Path:
    """30 rows inside the site's catalogue; row 1 is the patient."""
    header = "age,bmi,sex,score" if hospital_b else "age,bmi,sex,height,score"
    rows = []
    for i in range(30):
        bmi = patient_bmi if i == 0 else 20.0 + i % 20
        sex = "U" if hospital_b and i == 1 else "FM"[i % 2]
        rest = f"{i % 10}" if hospital_b else f"{150 + i},{i % 10}"
        rows.append(f"{20 + 2 * i},{bmi},{sex},{rest}")
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


class Nodes:
    """Three hospitals in process; hospital-b holds the patient."""

    def __init__(self, root: Path, patient_bmi: float):
        files = {name: site_csv(root / f"{name}.csv", hospital_b=name == "hospital-b",
                                patient_bmi=patient_bmi if name == "hospital-b" else 30.0)
                 for name in HOSPITALS}
        self.root = root
        self.parties = InProcessStudy(root, files, catalogue={
            "hospital-a": CATALOGUE_AC, "hospital-b": CATALOGUE_B, "hospital-c": CATALOGUE_AC})

    def run_study(self, real: Callable[..., Any], config: Any, *,
                  insecure: bool = False) -> Any:
        """``run_study`` as ``securecalc study run`` calls it, over these nodes."""
        return real(config, insecure=True, connect=self.parties.network.connect)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Nodes]:
    return {name: Nodes(tmp_path_factory.mktemp(name), bmi) for name, bmi in PATIENT.items()}


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch):
    """``run(nodes, name, schema_toml, analyses)``: exit status, stderr and released values of
    ``securecalc study run``."""
    real = study_module.run_study

    def run(nodes: Nodes, name: str, schema_toml: str,
            analyses: str) -> tuple[int, str, object]:
        nodes.parties.study(name, "mpc", schema_toml, analyses)
        study = nodes.root / f"{name}.study.toml"
        out = nodes.root / f"{name}.json"
        out.unlink(missing_ok=True)
        monkeypatch.setattr(study_module, "run_study", functools.partial(nodes.run_study, real))
        capsys.readouterr()
        status = cli.main(["study", "run", str(study), "--out", str(out)])
        stderr = anonymous(capsys.readouterr().err)
        released = ({aid: r["value"] for aid, r in json.loads(out.read_text())["results"].items()}
                    if out.exists() else None)
        return status, stderr, released

    return run


@pytest.fixture
def both(run):  # type: ignore[no-untyped-def]
    """The outcome, asserted to be the same whatever the patient's value."""

    def both(clusters: dict[str, Nodes], name: str, schema_toml: str,
             analyses: str = COUNT_BMI) -> tuple[int, str, object]:
        attack = run(clusters["attack"], name, schema_toml, analyses)
        assert run(clusters["control"], name, schema_toml, analyses) == attack
        return attack

    return both


def anonymous(text: str) -> str:
    """``text`` with node names as ``hospital-?`` (which refusing node answers first varies)."""
    return re.sub(r"hospital-[abc]", "hospital-?", text)


def refused(message: str) -> tuple[int, str, None]:
    return 1, anonymous(f"securecalc: error: hospital-b: {message}\n"), None


BOUNDS = "hospital-b offers column 'bmi' with bounds [15, 60]; the study declares {}: a " \
         "study must restate the catalogue's bounds"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("case", "schema_toml", "analyses", "message"), [
    ("narrower-min", schema(bmi=(16.0, 60.0)), COUNT_BMI, BOUNDS.format("[16, 60]")),
    ("narrower-max", schema(bmi=(15.0, 59.5)), COUNT_BMI, BOUNDS.format("[15, 59.5]")),
    ("excludes-the-patient", schema(bmi=(15.0, 50.0)), COUNT_BMI, BOUNDS.format("[15, 50]")),
    ("just-below-the-patient", schema(bmi=(15.0, 57.0)),
     '[[analysis]]\nid = "m"\nkind = "mean"\ncolumn = "bmi"\n', BOUNDS.format("[15, 57]")),
    ("missing-level", schema(sex=("F", "M")),
     '[[analysis]]\nid = "n"\nkind = "count"\nwhere = "sex == \'F\'"\n',
     "hospital-b offers column 'sex' with levels [\"F\", \"M\", \"U\"]; the study declares "
     "[\"F\", \"M\"]: a study must restate the catalogue's levels (in any order)"),
    ("wrong-type", schema(score="float"),
     '[[analysis]]\nid = "s"\nkind = "sum"\ncolumn = "score"\n',
     "hospital-b offers column 'score' as int with bounds [0, 10]; the study declares it "
     "float"),
    ("not-offered", schema(),
     '[[analysis]]\nid = "h"\nkind = "mean"\ncolumn = "height"\n',
     "hospital-b does not offer column 'height' (its catalogue: age, bmi, sex, score)"),
    ("filter-selects-nobody", schema(bmi=(15.0, 57.5)),
     '[[analysis]]\nid = "n"\nkind = "count"\nwhere = "bmi > 57.3"\n',
     BOUNDS.format("[15, 57.5]")),
    ("epsilon", schema(bmi=(15.0, 57.5)),
     '[[analysis]]\nid = "m"\nkind = "mean"\ncolumn = "bmi"\nepsilon = 1.0\n',
     BOUNDS.format("[15, 57.5]")),
])
def test_refusals_do_not_depend_on_the_data(clusters, both, case: str, schema_toml: str,  # type: ignore[no-untyped-def]
                                             analyses: str, message: str) -> None:
    assert both(clusters, case, schema_toml, analyses) == refused(message)


@pytest.mark.timeout(300)
def test_narrowing_the_bounds_no_longer_bisects_a_patient(clusters, both) -> None:  # type: ignore[no-untyped-def]
    """The attack: lower the study's max until the study is refused. It is refused unless the
    study restates the catalogue's max, and answered then, in both clusters alike."""
    answers = {}
    for top in (40.0, 50.0, 57.0, 57.5, 59.99, 60.0, 70.0):
        answers[top] = both(clusters, f"bisect-{top}", schema(bmi=(15.0, top)))
    for top, answer in answers.items():
        if top != 60.0:
            assert answer == refused(BOUNDS.format(f"[15, {top:g}]")), top
        else:
            assert answer == (0, "", {"n_bmi": 90}), top


@pytest.mark.timeout(120)
def test_a_coverage_refusal_is_audited(clusters, run) -> None:  # type: ignore[no-untyped-def]
    nodes = clusters["attack"]
    run(nodes, "audited-refusal", schema(bmi=(15.0, 50.0)), COUNT_BMI)
    log = (nodes.root / "audit" / "hospital-b.jsonl").read_text().splitlines()
    decision = [json.loads(x)["data"] for x in log if '"policy_decision"' in x][-1]
    assert decision["decision"] == "refused"
    assert decision["reason"] == BOUNDS.format("[15, 50]")  # hospital-b's own log


@pytest.mark.timeout(180)
def test_data_that_stop_fitting_are_refused_with_a_fixed_message(  # type: ignore[no-untyped-def]
        clusters, run, caplog: pytest.LogCaptureFixture) -> None:
    """The file changes under a running node: it is checked again, the detail goes to the
    node's log and every study is refused with a text that holds nothing of the data."""
    nodes = clusters["control"]
    path = load_node_config(nodes.root / "hospital-b.toml", insecure=True).data_path
    good = path.read_text()
    try:
        path.write_text(good.replace("\n20,40.0,", "\n20,75.5,", 1))
        time.sleep(0.01)
        with caplog.at_level(logging.WARNING):
            answer = run(nodes, "unfit", schema(), COUNT_BMI)
        assert answer == refused("the data of hospital-b no longer fit its catalogue; an "
                                 "operator must fix them")
        assert "column 'bmi', row 1 (line 2): '75.5' is outside" in caplog.text
    finally:
        path.write_text(good)
    assert run(nodes, "fixed", schema(), COUNT_BMI) == (0, "", {"n_bmi": 90})
