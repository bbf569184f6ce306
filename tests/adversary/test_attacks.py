"""Known attacks of a curious study lead, through real node processes and certificates.

The lead holds a valid coordinator certificate; three hospitals run ``min_cohort = 10``,
``min_cell_count = 5`` and ``require_all_hospitals``. Each test runs an attack with the
adversary kit (:mod:`tests.adversary.kit`) and asserts what the attacker gets, against the
behaviour the hospitals are owed: either a refusal with no released value (and no node's
audit log holding a ``job_end`` of the job), or values equal to the honest pooled
computation. The scenario (one patient in a passing cohort) is :mod:`tests.adversary.scenario`.

Clusters (started once for this module): ``exact`` (``[policy] ckks = "exact"``),
``other_rows`` (the same catalogue, other rows, the default CKKS policy and no budget set:
refusal texts must not change, and the DP attacks run there) and ``approving``
(``approval = true``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from securecalc.cluster import LocalCluster
from securecalc.core.config import StudyConfig, load_study_config
from securecalc.studyfolder import node_toml, write
from securecalc.transport.proto import study_pb2
from tests.adversary.kit import (
    Outcome,
    RawCoordinator,
    Tamper,
    honest,
    per_node,
    stand_in_certificate,
    with_all_where,
)
from tests.adversary.scenario import (
    CATALOGUE,
    HOSPITALS,
    OLD,
    PATIENT,
    PATIENT_FILTER,
    QUICK,
    SCHEMA,
    analysis,
    policy,
    site_rows,
    write_sites,
)

MOMENTS = (analysis("n", "count") + analysis("mean_y", "mean", column="y")
           + analysis("sum_sbp", "sum", column="sbp") + analysis("var_y", "variance", column="y"))
ENGINES = ("mpc", "ckks")


# --- clusters ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exact(cluster_factory, tmp_path_factory) -> LocalCluster:  # type: ignore[no-untyped-def]
    files = write_sites(tmp_path_factory.mktemp("rows"))
    return cluster_factory(files, catalogue=CATALOGUE, ckks="exact",
                           node_extra={h: policy() for h in HOSPITALS},
                           extra_names=["hospital-d"])


@pytest.fixture(scope="module")
def other_rows(cluster_factory, tmp_path_factory) -> LocalCluster:  # type: ignore[no-untyped-def]
    files = write_sites(tmp_path_factory.mktemp("rows"), variant=1)
    return cluster_factory(files, catalogue=CATALOGUE,
                           node_extra={h: policy() for h in HOSPITALS})


@pytest.fixture(scope="module")
def approving(cluster_factory, tmp_path_factory) -> LocalCluster:  # type: ignore[no-untyped-def]
    files = write_sites(tmp_path_factory.mktemp("rows"))
    return cluster_factory(files, catalogue=CATALOGUE, with_compute=False,
                           node_extra={h: policy(approval=True) for h in HOSPITALS})


# --- helpers ----------------------------------------------------------------------------------

_studies = iter(range(10**6))


def study(cluster: LocalCluster, engine: str, analyses: str, *, schema: str = SCHEMA,
          name: str | None = None, **kwargs: Any) -> StudyConfig:
    """A study of ``cluster`` (a fresh name unless given), loaded as the coordinator would."""
    name = name or f"adv-{engine}-{next(_studies)}"
    return load_study_config(cluster.study(name, engine, schema, analyses, extra_study=QUICK,
                                           **kwargs))


def raw(cluster: LocalCluster) -> RawCoordinator:
    return RawCoordinator.over_grpc(cluster.pki)


def events(cluster: LocalCluster, name: str, root: Path | None = None) -> list[dict[str, Any]]:
    path = (root or cluster.root) / "audit" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_nothing_released(outcome: Outcome, cluster: LocalCluster, what: str) -> None:
    """The contract for an attack: an error at the coordinator, no value, and no hospital
    ending the job with results."""
    gained = str(outcome.released)
    gained = gained if len(gained) < 800 else gained[:800] + " ..."
    assert outcome.refused and not outcome.released, (
        f"{what}: the attacker got {gained} (per node: {outcome.nodes})")
    for hospital in HOSPITALS:
        ends = [e for e in events(cluster, hospital) if e["event"] == "job_end"
                and e["data"]["job"].split(".")[0] == outcome.job_id]
        assert not ends, f"{what}: {hospital} ended the job: {ends}"


def assert_same_refusal(config: StudyConfig, control: StudyConfig,
                        tamper: Tamper = honest) -> None:
    """Each node refuses ``config`` on its rows and ``control`` (the same study) on other
    rows in the same words. Each node is asked alone: with all asked at once, the first
    refusal cancels the others and timing decides whose it is."""
    ours = RawCoordinator.over_grpc(Path(config.tls.cert).parent)  # type: ignore[union-attr]
    theirs = RawCoordinator.over_grpc(Path(control.tls.cert).parent)  # type: ignore[union-attr]
    said, other = ours.each_node_says(config, tamper), theirs.each_node_says(control, tamper)
    assert any(said.values()), f"no node refused: {said}"
    assert said == other


def pooled(variant: int = 0) -> list[dict[str, object]]:
    return [row for h in HOSPITALS for row in site_rows(h, variant)]


def moments(rows: list[dict[str, object]]) -> dict[str, tuple[float, int]]:
    y = np.array([float(r["y"]) for r in rows])  # type: ignore[arg-type]
    sbp = np.array([int(r["sbp"]) for r in rows])  # type: ignore[call-overload]
    return {"n": (len(rows), len(rows)), "mean_y": (float(y.mean()), len(rows)),
            "sum_sbp": (int(sbp.sum()), len(rows)),
            "var_y": (float(y.var(ddof=1)), len(rows))}


# --- 1. a different job for each node ---------------------------------------------------------

NOBODY = "age < 18"  # a valid filter (the catalogue's min is 18) that selects no row
SPLITS: dict[str, dict[str, str]] = {
    "one hospital, nobody elsewhere": {"hospital-b": NOBODY, "hospital-c": NOBODY},
    "one patient at one node, a whole hospital at another": {
        "hospital-a": PATIENT_FILTER, "hospital-c": NOBODY},
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("split", SPLITS)
def test_a_different_job_for_each_node(exact, engine: str, split: str) -> None:  # type: ignore[no-untyped-def]
    """One job id; each node its own filter. Owed: a refusal at every node (their digests
    of the job differ), never the union of what each node was told."""
    config = study(exact, engine, MOMENTS)
    outcome = raw(exact).run(config, per_node({
        node: with_all_where(where) for node, where in SPLITS[split].items()}))
    if outcome.released:  # what the attack gives today, for the report
        rows = [r for r in site_rows("hospital-a")]
        print(f"released {outcome.released}; hospital-a alone: {moments(rows)}")
    assert_nothing_released(outcome, exact, f"{engine}, {split}")


# --- 2. the study's declaration decides the gates ---------------------------------------------

WIDENED = SCHEMA.replace("[schema.cens]\ntype = \"int\"\nmin = 0\nmax = 1",
                         "[schema.cens]\ntype = \"int\"\nmin = 0\nmax = 2")
LINREG_CENS = analysis("model", "linreg", y="y", x=["cens"], where=OLD)


def intercept(outcome: Outcome) -> float | None:
    value = outcome.released.get("model", (None, None))[0]
    return None if value is None else value["coefficients"]["(intercept)"]["estimate"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_declaration_must_restate_the_catalogue(exact, other_rows, engine: str) -> None:  # type: ignore[no-untyped-def]
    """cens is published as int [0, 1]; a study declaring [0, 2] would escape the 0/1
    gates and read the one cens = 0 patient of a passing cohort as its intercept. Owed: a
    refusal that quotes the declarations only, the same on other rows."""
    assert "[schema.cens]\ntype = \"int\"\nmin = 0\nmax = 2" in WIDENED
    outcome = raw(exact).run(study(exact, engine, LINREG_CENS, schema=WIDENED,
                                   name=f"widened-{engine}"))
    print(f"intercept released: {intercept(outcome)} (the patient's y: {PATIENT['y']})")
    assert_nothing_released(outcome, exact, f"{engine}, cens declared [0, 2]")
    assert outcome.error is not None and "cens" in outcome.error
    assert str(PATIENT["y"]) not in outcome.error
    if engine == "mpc":  # other_rows runs the default CKKS policy
        assert_same_refusal(study(exact, engine, LINREG_CENS, schema=WIDENED, name="w"),
                            study(other_rows, engine, LINREG_CENS, schema=WIDENED, name="w"))


@pytest.mark.timeout(60)
def test_the_honest_declaration_keeps_the_gate(exact) -> None:  # type: ignore[no-untyped-def]
    """With the catalogue's own declaration the same model is withheld (a control)."""
    outcome = raw(exact).run(study(exact, "mpc", LINREG_CENS))
    assert outcome.error is None and intercept(outcome) is None


# --- 3. approval covers what changes the answer -----------------------------------------------

def approve_pending(cluster: LocalCluster, error: str) -> None:
    """Approve the request id the refusal names at every node, as their operators would."""
    for request in set(re.findall(r"securecalc node approve (\S+?)`", error)):
        for hospital in HOSPITALS:
            subprocess.run([sys.executable, "-m", "securecalc", "node", "approve", request,
                            "--config", str(cluster.root / f"{hospital}.toml")],
                           capture_output=True, timeout=60)


@pytest.mark.timeout(120)
def test_approval_does_not_cover_a_widened_declaration(approving) -> None:  # type: ignore[no-untyped-def]
    """The operators approve the honest study; the lead reruns it under the same name with
    cens widened to [0, 2]. Owed: a new approval is needed (or a refusal): never the
    patient's value."""
    config = study(approving, "mpc", LINREG_CENS, name="approved-study")
    coordinator = raw(approving)
    outcome = coordinator.run(config)
    for _ in range(3):  # each node records the request when it first sees it
        if outcome.error is None or "approve" not in outcome.error:
            break
        approve_pending(approving, outcome.error)
        outcome = coordinator.run(config)
    assert outcome.error is None, outcome.error
    assert intercept(outcome) is None  # the approved study's gate holds
    widened = study(approving, "mpc", LINREG_CENS, schema=WIDENED, name="approved-study")
    attack = coordinator.run(widened)
    print(f"intercept released without a new approval: {intercept(attack)}")
    assert_nothing_released(attack, approving, "widened declaration under an approval")


# --- 4. CKKS by default: exact for one patient? -----------------------------------------------

def unit_histograms(count: int, epsilon: float) -> str:
    """``count`` unit-bin histograms of age and sbp, filtered to the patient."""
    out = []
    for i in range(count):
        column, low, high = (("age", 18, 95), ("sbp", 80, 220))[i % 2]
        out.append(analysis(f"h{i}", "histogram", column=column,
                            edges=list(range(low, high + 1)), where=PATIENT_FILTER,
                            epsilon=epsilon))
    return "".join(out)


def recovered(outcome: Outcome) -> dict[str, int]:
    """The patient's age and sbp by majority over the decrypted noisy bins."""
    votes: dict[str, np.ndarray] = {}
    for aid, (value, _n) in outcome.released.items():
        column = "age" if int(aid[1:]) % 2 == 0 else "sbp"
        counts = np.array([c if isinstance(c, int | float) else 0 for c in value["counts"]],
                          dtype=float)
        votes[column] = votes.get(column, np.zeros_like(counts)) + counts
    low = {"age": 18, "sbp": 80}
    return {column: int(np.argmax(v)) + low[column] for column, v in votes.items()}


@pytest.mark.timeout(120)
def test_epsilon_above_the_ceiling_is_refused(other_rows) -> None:  # type: ignore[no-untyped-def]
    """30 unit-bin histograms at epsilon 10 filtered to one patient, on CKKS under the
    default policy and no budget: the key holder reads the patient's values. Owed: a
    refusal (epsilon above the default ceiling of 1.0)."""
    outcome = raw(other_rows).run(study(other_rows, "ckks", unit_histograms(30, 10.0)),
                                  ungated=True)
    assert not outcome.released, (
        f"the key holder recovered {recovered(outcome)} (the patient: {PATIENT})")
    assert_nothing_released(outcome, other_rows, "30 histograms at epsilon 10")


@pytest.mark.timeout(120)
def test_the_default_budget_runs_out(other_rows) -> None:  # type: ignore[no-untyped-def]
    """The same attack at epsilon 1.0 (the ceiling), two histograms per study, each run
    under a new study name. Owed: a finite default total budget (5.0) stops it after a
    handful of runs, before the majority vote converges."""
    coordinator = raw(other_rows)
    spent = 0.0
    runs: list[Outcome] = []
    for _ in range(8):
        outcome = coordinator.run(study(other_rows, "ckks", unit_histograms(2, 1.0)),
                                  ungated=True)
        runs.append(outcome)
        if outcome.refused:
            break
        spent += 2.0
    print(f"spent {spent} before a refusal; released runs: {len(runs) - 1}")
    assert runs[-1].refused, f"8 runs at epsilon 2.0 each were all released ({spent})"
    assert spent <= 5.0
    assert "budget" in (runs[-1].error or "")


# --- earlier attacks, kept running through the kit --------------------------------------------

def replace_party(name: str, address: str, index: int = 2) -> Callable[
        [str, study_pb2.JobSpec], study_pb2.JobSpec]:
    def tamper(_node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
        spec.parties[index].name = name
        spec.parties[index].address = address
        return spec

    return tamper


@pytest.mark.timeout(60)
@pytest.mark.parametrize("party", ["coordinator", "hospital-d"])
def test_a_party_list_with_a_stranger_is_refused(exact, other_rows, party: str) -> None:  # type: ignore[no-untyped-def]
    """The coordinator's own certificate name, or a CA-signed hospital outside the roster,
    as the third party: every node refuses before computing, in words that do not depend
    on the rows."""
    address = exact.addresses["compute"]
    outcome = raw(exact).run(study(exact, "mpc", MOMENTS, name=f"stranger-{party}"),
                             replace_party(party, address))
    assert_nothing_released(outcome, exact, f"{party} as a party")
    assert_same_refusal(study(exact, "mpc", MOMENTS, name="s"),
                        study(other_rows, "mpc", MOMENTS, name="s"),
                        replace_party(party, "127.0.0.1:9"))


NARROWED = SCHEMA.replace("[schema.y]\ntype = \"float\"\nmin = 0.0\nmax = 100.0",
                          "[schema.y]\ntype = \"float\"\nmin = 0.0\nmax = 73.0")


@pytest.mark.timeout(60)
def test_refusals_are_not_an_oracle(exact, other_rows) -> None:  # type: ignore[no-untyped-def]
    """Bounds narrowed below the patient's value (73.25): the refusal is the same on rows
    where nobody lies above the new bound, and never quotes a value of the rows."""
    one = raw(exact).run(study(exact, "mpc", analysis("m", "mean", column="y")),
                         per_node({}))
    assert one.error is None
    outcome = raw(exact).run(study(exact, "mpc", analysis("m", "mean", column="y"),
                                   schema=NARROWED, name="narrowed"))
    assert outcome.refused
    assert_same_refusal(
        study(exact, "mpc", analysis("m", "mean", column="y"), schema=NARROWED, name="n"),
        study(other_rows, "mpc", analysis("m", "mean", column="y"), schema=NARROWED, name="n"))
    assert str(PATIENT["y"]) not in (outcome.error or "")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_one_patient_level_withholds_the_regression(exact, engine: str) -> None:  # type: ignore[no-untyped-def]
    """In the passing old cohort the patient is the only woman: a regression on sex would
    give her y from the intercept and the coefficient. Owed: withheld."""
    outcome = raw(exact).run(study(exact, engine, analysis("model", "linreg", y="y",
                                                           x=["sex"], where=OLD)))
    assert outcome.error is None, outcome.error
    assert "model" not in outcome.released


@pytest.mark.timeout(60)
def test_an_honest_run_releases_the_pooled_values(exact) -> None:  # type: ignore[no-untyped-def]
    """The kit's honest path: the released values are numpy's on the pooled rows."""
    outcome = raw(exact).run(study(exact, "mpc", MOMENTS))
    expected = moments(pooled())
    assert outcome.error is None, outcome.error
    for aid, (value, n) in expected.items():
        assert outcome.released[aid][1] == n
        assert outcome.released[aid][0] == pytest.approx(value, rel=1e-9)


# --- stand-in hospitals -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def stand_ins(exact, tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Nodes for hospital-b and hospital-c run by the lead: CA-signed certificates of those
    names with keys of its own, and data files without rows. Returns their addresses."""
    addresses = {}
    for name in ("hospital-b", "hospital-c"):
        folder = tmp_path_factory.mktemp(f"stand-in-{name}")
        stand_in_certificate(exact.pki, name, folder / "pki")
        for public in exact.pki.glob("*.crt"):  # the others' certificates are public
            if not (folder / "pki" / public.name).exists():
                shutil.copy(public, folder / "pki" / public.name)
        data = write(folder / "empty.csv", "age,sex,sbp,y,cens\n")
        config = write(folder / f"{name}.toml",
                       node_toml(name, "127.0.0.1:0", data, folder / "pki", list(HOSPITALS),
                                 CATALOGUE) + "\n" + policy(ckks="exact"))
        addresses[name] = exact.servers.start(
            f"stand-in-{name}", ["node", "serve", "--config", str(config)]).address
    return addresses


@pytest.mark.timeout(120)
def test_a_stand_in_hospital_is_refused(exact, stand_ins) -> None:  # type: ignore[no-untyped-def]
    """The lead lists its stand-ins at hospital-b's and hospital-c's places; hospital-a
    computes with them and the result is hospital-a's alone. Owed: hospital-a refuses peers
    whose keys are not the ones pinned for those names."""
    config = study(exact, "mpc", MOMENTS, address_override=stand_ins)
    outcome = raw(exact).run(config)
    if outcome.released:
        print(f"released {outcome.released}; hospital-a: {moments(site_rows('hospital-a'))}")
    assert outcome.refused and not outcome.released, (
        f"the stand-ins gave the attacker {outcome.released}")
    ends = [e for e in events(exact, "hospital-a") if e["event"] == "job_end"
            and e["data"]["job"] == outcome.job_id]
    assert not ends
