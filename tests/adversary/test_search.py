"""A property-based search over the adversary kit: one node's job mutated, one property.

Take an honest study (count, mean, sum, variance, histogram; filters), mutate the job one
node receives (or every node's) in one way: a filter, a column, a threshold, the bins, an
epsilon, a level list, a bound, a declared type, the party order or the job id. Whatever the
mutation, the outcome must be either

- a refusal with no released value, whose words do not depend on the rows: the same
  mutation on a second set of nodes holding other rows under the same catalogue draws, from
  each node that answered in both, the same text (addresses, ports, job ids masked); or
- released values equal to the honest pooled computation (numpy on the pooled rows) of one
  canonical job: the honest one, or the mutated one as if every node had received it.

Cases in ``make test``: 100 on MPC and 100 on CKKS in process (the nodes' own code over
:class:`~securecalc.transport.memory.MemoryNetwork`, real MPyC workers and TenSEAL), and 10
through real node processes over gRPC with mutual TLS (about 2 min on two cores). Set
``SECURECALC_ADVERSARY_EXAMPLES`` for more (each target then runs that many, with fresh
random cases): 500 on MPC and 500 on CKKS in process (4 min 16 s) and 100 through real
processes (1 min) found nothing. Shrinking is off: each
case runs whole studies, and every mutation is already a single change.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from securecalc.core.config import StudyConfig, load_node_config, load_study_config
from securecalc.errors import SecureCalcError
from securecalc.studyfolder import node_toml, study_toml, write
from securecalc.transport.codec import job_from_proto
from securecalc.transport.memory import MemoryNetwork
from securecalc.transport.proto import study_pb2
from tests.adversary.kit import Outcome, RawCoordinator, refusals, set_analysis, set_column
from tests.adversary.scenario import (
    CATALOGUE,
    HOSPITALS,
    SCHEMA,
    analysis,
    policy,
    site_rows,
    write_sites,
)

LONG_RUN = int(os.environ.get("SECURECALC_ADVERSARY_EXAMPLES", "0") or 0)
EDGES = [18, 40, 60, 80, 95]
ANALYSES = (analysis("n", "count", where="sex == 'F'")
            + analysis("mean_y", "mean", column="y", where="age >= 40")
            + analysis("sum_sbp", "sum", column="sbp")
            + analysis("var_y", "variance", column="y")
            + analysis("hist", "histogram", column="age", edges=EDGES))
#: the search is about agreement and semantics, not budgets (tests/adversary/test_attacks.py
#: runs the budget attacks): a node total large enough for any number of cases
SEARCH_BUDGET = 1_000_000
QUICK = "timeout_seconds = 30\npeer_timeout_seconds = 3\n"

#: filters a mutation may set, with what they mean on a row
FILTERS: dict[str | None, Callable[[dict[str, Any]], bool]] = {
    None: lambda r: True,
    "age >= 0": lambda r: True,
    "age < 18": lambda r: False,
    "age >= 40": lambda r: r["age"] >= 40,
    "sex == 'F'": lambda r: r["sex"] == "F",
    "age == 93 and sex == 'F'": lambda r: r["age"] == 93 and r["sex"] == "F",
    "age >= 90": lambda r: r["age"] >= 90,
}


def settings_for(default: int) -> Callable[[Any], Any]:
    n = LONG_RUN or default
    chosen = settings(max_examples=n, deadline=None, derandomize=not LONG_RUN, database=None,
                      phases=[Phase.explicit, Phase.reuse, Phase.generate],
                      suppress_health_check=list(HealthCheck))
    timeout = pytest.mark.timeout(max(150, 4 * n))

    def decorate(test: Any) -> Any:
        return timeout(chosen(test))

    return decorate


# --- the oracle: numpy on the pooled rows -----------------------------------------------------

ANY = object()  # a noisy (epsilon) analysis: no exact value to compare


def expected(spec: study_pb2.JobSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per analysis id: the value the canonical job ``spec`` releases on the pooled ``rows``
    (None: withheld by a gate; ANY: noisy)."""
    out: dict[str, Any] = {}
    for wire in spec.analyses:
        table = json.loads(wire.table_json)
        if table.get("epsilon") is not None:
            out[wire.id] = ANY
            continue
        keep = FILTERS.get(table.get("where"))
        if keep is None:
            out[wire.id] = ANY
            continue
        chosen = [r for r in rows if keep(r)]
        kind, column = table["kind"], table.get("column")
        x = np.array([r[column] for r in chosen], dtype=float) if column else None
        n = len(chosen)
        if n < spec.min_cohort:
            out[wire.id] = None
        elif kind == "count":
            out[wire.id] = n
        elif kind == "sum":
            out[wire.id] = float(x.sum())  # type: ignore[union-attr]
        elif kind == "mean":
            out[wire.id] = float(x.mean())  # type: ignore[union-attr]
        elif kind == "variance":
            out[wire.id] = float(x.var(ddof=1))  # type: ignore[union-attr]
        elif kind == "histogram":
            edges = table["edges"]
            counts = np.histogram(x, bins=edges)[0]  # last bin closed, as the kind's
            small = any(0 < c < spec.min_cell_count for c in counts)
            out[wire.id] = None if small or counts.sum() < spec.min_cohort else \
                [int(c) for c in counts]
        else:
            out[wire.id] = ANY
    return out


def matches(released: Any, value: Any, rel: float) -> bool:
    if value is ANY:
        return True
    if value is None:
        return False
    if isinstance(value, list):
        counts = released.get("counts") if isinstance(released, dict) else None
        return counts is not None and len(counts) == len(value) and all(
            isinstance(c, int | float) and abs(c - v) <= 1e-6 for c, v in zip(counts, value,
                                                                               strict=True))
    return isinstance(released, int | float) and bool(
        np.isclose(released, value, rtol=rel, atol=1e-9))


def consistent(outcome: Outcome, candidates: list[dict[str, Any]], rel: float) -> bool:
    """Every released value agrees with one candidate canonical job."""
    released = outcome.released
    return any(all(aid in c and matches(v, c[aid], rel) for aid, (v, _n) in released.items())
               for c in candidates)


# --- mutations ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutation:
    what: str
    target: str  # a hospital, or "all"
    apply: Callable[[study_pb2.JobSpec], None]

    def tamper(self, node: str, spec: study_pb2.JobSpec) -> study_pb2.JobSpec:
        if self.target in ("all", node):
            self.apply(spec)
        return spec


def _mutations() -> st.SearchStrategy[tuple[str, Callable[[study_pb2.JobSpec], None]]]:
    ids = st.sampled_from(["n", "mean_y", "sum_sbp", "var_y", "hist"])

    def on_analysis(**keys: Any) -> Callable[[str], Callable[[study_pb2.JobSpec], None]]:
        return lambda aid: lambda spec: set_analysis(spec, aid, **keys)

    def thresholds(cohort: int, cell: int) -> Callable[[study_pb2.JobSpec], None]:
        def apply(spec: study_pb2.JobSpec) -> None:
            spec.min_cohort, spec.min_cell_count = cohort, cell
        return apply

    def parties(order: list[int]) -> Callable[[study_pb2.JobSpec], None]:
        def apply(spec: study_pb2.JobSpec) -> None:
            refs = [(p.name, p.address) for p in spec.parties]
            for slot, index in enumerate(order):
                spec.parties[slot].name, spec.parties[slot].address = refs[index]
        return apply

    def job_id(_: int) -> Callable[[study_pb2.JobSpec], None]:
        fresh = uuid.uuid4().hex

        def apply(spec: study_pb2.JobSpec) -> None:
            spec.job_id = fresh
        return apply

    def declared(column: str, **kw: Any) -> Callable[[study_pb2.JobSpec], None]:
        return lambda spec: set_column(spec, column, **kw)

    return st.one_of(
        st.builds(lambda w, a: named(f"{a}.where = {w!r}", on_analysis(where=w)(a)),
                  st.sampled_from(list(FILTERS)), ids),
        st.builds(lambda c, a: named(f"{a}.column = {c!r}", on_analysis(column=c)(a)),
                  st.sampled_from(["y", "sbp", "age"]), st.sampled_from(["mean_y", "var_y"])),
        st.builds(lambda c, k: named(f"min_cohort = {c}, min_cell_count = {k}",
                                     thresholds(c, k)),
                  st.sampled_from([1, 5, 10, 11, 100]), st.sampled_from([1, 3, 5, 6])),
        st.builds(lambda e: named(f"hist.edges = {e}", on_analysis(edges=e)("hist")),
                  st.sampled_from([[18, 95], [18, 50, 95], [18, 90, 93, 94, 95],
                                   [18, 40, 60, 80, 95]])),
        st.builds(lambda e, a: named(f"{a}.epsilon = {e}", on_analysis(epsilon=e)(a)),
                  st.sampled_from([0.5, 1.0, 10.0]), ids),
        st.builds(lambda lv: named(f"schema.sex.levels = {lv}", declared("sex", levels=lv)),
                  st.sampled_from([["F", "M"], ["M", "F"], ["F", "M", "U"], ["F"]])),
        st.builds(lambda b: named(f"schema.y bounds = {b}", declared("y", bounds=b)),
                  st.sampled_from([(0.0, 100.0), (0.0, 73.0), (-10.0, 200.0)])),
        st.builds(lambda b: named(f"schema.age bounds = {b}", declared("age", bounds=b)),
                  st.sampled_from([(18, 95), (0, 120), (90, 95)])),
        st.builds(lambda t: named(f"schema.sbp.type = {t!r}", declared("sbp", type=t)),
                  st.sampled_from(["float", "int"])),
        st.builds(lambda o: named(f"party order {o}", parties(o)), st.permutations([0, 1, 2])),
        st.builds(lambda i: named("a new job id", job_id(i)), st.integers(0, 3)),
    )


def named(label: str, apply: Callable[[study_pb2.JobSpec], None]
          ) -> tuple[str, Callable[[study_pb2.JobSpec], None]]:
    """A mutation with what it changes, for the report of a failing case."""
    return label, apply


MUTATIONS = st.builds(
    lambda labelled, target: Mutation(labelled[0], target, labelled[1]), _mutations(),
    st.sampled_from([*HOSPITALS, "all"]))


# --- running a case ---------------------------------------------------------------------------

@dataclass(repr=False)
class Nodes:
    """A coordinator's view of one set of nodes: how to reach them and their rows."""

    coordinator: RawCoordinator
    study: Callable[[str, str], StudyConfig]
    rows: list[dict[str, Any]]


def check_case(ours: Nodes, theirs: Nodes, engine: str, mutation: Mutation) -> None:
    """Run ``mutation`` against both sets of nodes and assert the property."""
    name = f"search-{uuid.uuid4().hex[:8]}"
    job_id = uuid.uuid4().hex
    config = ours.study(name, engine)
    honest_spec = _spec(config, job_id)
    mutated = mutation.tamper("all", _spec(config, job_id))
    finish_with = None
    if mutation.target == "all":  # every node gets one other job: the lead reads it as such
        try:
            job_from_proto(mutated, engine)
            finish_with = mutated
        except SecureCalcError:
            pass
    outcome = ours.coordinator.run(config, mutation.tamper, job_id=job_id,
                                   finish_with=finish_with)
    if outcome.refused:
        event(f"{engine}: refused")
        control = theirs.coordinator.run(theirs.study(name, engine), mutation.tamper,
                                         job_id=job_id)
        assert control.refused, f"refused on one set of rows only: {outcome.error}"
        common = set(refusals(outcome)) & set(refusals(control))
        for node in common:
            assert refusals(outcome)[node] == refusals(control)[node], (
                f"{node}'s refusal depends on the rows")
        return
    event(f"{engine}: released")
    candidates = [expected(honest_spec, ours.rows)]
    try:
        job_from_proto(mutated, engine)
        candidates.append(expected(mutated, ours.rows))
    except SecureCalcError:
        pass
    rel = 1e-9 if engine == "mpc" else 1e-6
    assert consistent(outcome, candidates, rel), (
        f"released {outcome.released}, but the honest pooled values are {candidates[0]}"
        + (f" and the mutated job's {candidates[1]}" if len(candidates) > 1 else ""))


def _spec(config: StudyConfig, job_id: str) -> study_pb2.JobSpec:
    from securecalc.core.job import Job
    from securecalc.transport.codec import job_to_proto

    return job_to_proto(Job(study=config.name, job_id=job_id, parties=config.parties,
                            schema=config.schema, analyses=config.analyses,
                            min_cell_count=config.min_cell_count,
                            min_cohort=config.min_cohort))


# --- in process -------------------------------------------------------------------------------

UNUSED_PKI = Path("/nonexistent-pki")


def in_process(root: Path, variant: int) -> Nodes:
    """Three hospitals in this process over the in-memory network, with a compute node."""
    from securecalc.audit.events import open_log
    from securecalc.compute.aggregator import Aggregator
    from securecalc.compute.open_jobs import ComputeJobs

    files = write_sites(root / "rows", variant)
    network = MemoryNetwork()
    addresses = {h: f"127.0.0.1:{7201 + i}" for i, h in enumerate(HOSPITALS)}
    for name in HOSPITALS:
        text = node_toml(name, addresses[name], files[name], UNUSED_PKI, list(HOSPITALS),
                         CATALOGUE) + "\n" + policy(ckks="exact", dp_total_budget=SEARCH_BUDGET)
        network.add_node(load_node_config(write(root / f"{name}.toml", text), insecure=True))
    audit = open_log(root / "audit" / "compute.jsonl", "compute", key=None, cert=None)
    network.add_compute("compute", Aggregator(ComputeJobs(), audit,
                                              coordinators=("coordinator",), insecure=True))

    def study(name: str, engine: str) -> StudyConfig:
        compute = ("compute", "127.0.0.1:7200") if engine == "ckks" else None
        text = study_toml(name, engine, list(addresses.items()), UNUSED_PKI, SCHEMA, ANALYSES,
                          compute=compute, extra_study=QUICK)
        text += f'\n[audit]\nlog = "{root / "audit" / "coordinator.jsonl"}"\n'
        return load_study_config(write(root / "studies" / f"{name}.toml", text), insecure=True)

    rows = [r for h in HOSPITALS for r in site_rows(h, variant)]
    return Nodes(RawCoordinator.in_memory(network), study, rows)


@pytest.fixture(scope="module")
def memory_nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Nodes, Nodes]:
    return (in_process(tmp_path_factory.mktemp("ours"), 0),
            in_process(tmp_path_factory.mktemp("theirs"), 1))


@settings_for(100)
@given(mutation=MUTATIONS)
def test_one_mutated_job_on_mpc(memory_nodes, mutation: Mutation) -> None:  # type: ignore[no-untyped-def]
    check_case(*memory_nodes, "mpc", mutation)


@settings_for(100)
@given(mutation=MUTATIONS)
def test_one_mutated_job_on_ckks(memory_nodes, mutation: Mutation) -> None:  # type: ignore[no-untyped-def]
    check_case(*memory_nodes, "ckks", mutation)


# --- through real processes -------------------------------------------------------------------

@pytest.fixture(scope="module")
def process_nodes(cluster_factory, tmp_path_factory) -> Iterator[tuple[Nodes, Nodes]]:  # type: ignore[no-untyped-def]
    made = []
    for variant in (0, 1):
        files = write_sites(tmp_path_factory.mktemp("rows"), variant)
        cluster = cluster_factory(files, catalogue=CATALOGUE, ckks="exact",
                                  node_extra={h: policy(dp_total_budget=SEARCH_BUDGET)
                                              for h in HOSPITALS})

        def study(name: str, engine: str, cluster: Any = cluster) -> StudyConfig:
            return load_study_config(cluster.study(name, engine, SCHEMA, ANALYSES,
                                                   extra_study=QUICK))

        made.append(Nodes(RawCoordinator.over_grpc(cluster.pki), study,
                          [r for h in HOSPITALS for r in site_rows(h, variant)]))
    yield made[0], made[1]


@settings_for(10)
@given(mutation=MUTATIONS, engine=st.sampled_from(["mpc", "ckks"]))
def test_one_mutated_job_through_real_processes(process_nodes, mutation: Mutation,  # type: ignore[no-untyped-def]
                                                engine: str) -> None:
    check_case(*process_nodes, engine, mutation)
