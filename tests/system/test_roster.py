"""An untrusted coordinator picks parties and compute nodes: attacks through real processes.

The coordinator writes the study, so it may list itself (a node run with its own certificate
and an empty data file) as a party, name its own server as the compute node, run a study with
two hospitals, or bring a hospital the nodes never agreed to work with. Each must be refused
by the hospitals' own configuration and the roles the study CA put in the certificates, before
anything is computed or encrypted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from securecalc.cluster import LocalCluster
from securecalc.coordinator.study import run_study
from securecalc.errors import PartyError, PolicyError, SecureCalcError
from securecalc.studyfolder import compute_toml, write
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc.transport.channel import ChannelSet

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c", "hospital-d")
COUNT = '[[analysis]]\nid = "n"\nkind = "count"\n'
MEAN = '[[analysis]]\nid = "age"\nkind = "mean"\ncolumn = "age"\n'
NOISY = COUNT + "epsilon = 1.0\n"
QUICK = "peer_timeout_seconds = 5\ntimeout_seconds = 30\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    names = (*HOSPITALS, "hospital-e")
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=len(names), rows=300,
                         seed=3, names=names)
    return dict(zip(names, files, strict=True))


def empty_like(path: Path, out: Path) -> Path:
    """A data file with ``path``'s header and no rows."""
    return write(out, path.read_text().splitlines()[0] + "\n")


def start_coordinator_node(cluster: LocalCluster, cohort: dict[str, Path],
                           roster: list[str]) -> None:
    """The coordinator's own party node: its certificate, an empty data file, a policy that
    accepts anything (so only the hospitals refuse), and an audit log apart from the one the
    coordinator keeps as such."""
    empty = empty_like(cohort["hospital-a"], cluster.root / "empty.csv")
    cluster.start_node("coordinator", empty, [*roster, "coordinator"],
                       '[policy]\nmin_parties = 2\nckks = "exact"\n\n'
                       '[audit]\nlog = "audit/coordinator-node.jsonl"\n')


def events(cluster: LocalCluster, name: str) -> list[dict]:  # type: ignore[type-arg]
    lines = (cluster.root / "audit" / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def refusals(cluster: LocalCluster, name: str, study: str) -> list[str]:
    """Why ``name`` refused ``study``; fails if it started any job of it. (The first refusal
    cancels the coordinator's other calls, so another node may never have seen the study.)"""
    jobs = {e["data"]["job"] for e in events(cluster, name)
            if e["event"] == "study_received" and e["data"]["study"] == study}
    assert not [e for e in events(cluster, name)
                if e["event"] == "job_start" and e["data"]["job"] in jobs]
    return [str(e["data"]["reason"]) for e in events(cluster, name)
            if e["event"] == "policy_decision" and e["data"]["job"] in jobs]


@pytest.fixture(scope="module")
def cluster(cluster_factory, cohort):  # type: ignore[no-untyped-def]
    """Four hospitals with default rosters (hospital-d requires all of them), a compute node,
    the coordinator's own party node, and hospital-e: a hospital certificate in no roster."""
    cluster = cluster_factory({h: cohort[h] for h in HOSPITALS}, extra_names=("hospital-e",),
                              node_extra={"hospital-d": "[policy]\nrequire_all_hospitals = "
                                                        "true\n"})
    start_coordinator_node(cluster, cohort, list(HOSPITALS))
    cluster.start_node("hospital-e", cohort["hospital-e"], [*HOSPITALS, "hospital-e"])
    return cluster


@pytest.mark.timeout(60)
def test_the_coordinator_cannot_be_an_mpc_party(cluster) -> None:  # type: ignore[no-untyped-def]
    study = cluster.study("self-mpc", "mpc", SYNTH_SCHEMA_TOML, MEAN, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b", "coordinator"])
    with pytest.raises(PolicyError, match="coordinator as a party, which is not a hospital in"):
        run_study(study)
    reasons = [r for h in ("hospital-a", "hospital-b") for r in refusals(cluster, h, "self-mpc")]
    assert reasons and all("coordinator as a party" in r for r in reasons)


@pytest.mark.timeout(60)
def test_the_coordinator_cannot_be_a_ckks_party(cluster) -> None:  # type: ignore[no-untyped-def]
    study = cluster.study("self-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY, extra_study=QUICK,
                          parties=["hospital-b", "coordinator"])
    with pytest.raises(PolicyError, match="hospital-b.*coordinator as a party"):
        run_study(study)
    assert not [e for e in events(cluster, "compute") if e["event"] == "contribution"
                and e["data"]["site"] == "hospital-b"]


@pytest.mark.timeout(60)
def test_a_hospital_outside_the_roster_is_refused(cluster) -> None:  # type: ignore[no-untyped-def]
    study = cluster.study("stranger", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b", "hospital-e"])
    with pytest.raises(PolicyError, match="hospital-e as a party, which is not a hospital in"):
        run_study(study)
    reasons = [r for h in ("hospital-a", "hospital-b") for r in refusals(cluster, h, "stranger")]
    assert reasons and all("hospital-e as a party" in r for r in reasons)


@pytest.mark.timeout(60)
def test_two_hospitals_are_refused_by_default(cluster) -> None:  # type: ignore[no-untyped-def]
    study = cluster.study("pair", "ckks", SYNTH_SCHEMA_TOML, NOISY, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b"])
    with pytest.raises(PolicyError, match="has 2 parties; this node requires min_parties >= 3"):
        run_study(study)


@pytest.mark.timeout(90)
def test_require_all_hospitals_refuses_a_subset(cluster, cohort) -> None:  # type: ignore[no-untyped-def]
    subset = cluster.study("subset", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                           parties=["hospital-a", "hospital-b", "hospital-d"])
    with pytest.raises(PolicyError, match="hospital-d.*leaves out hospital-c.*"
                                          "require_all_hospitals"):
        run_study(subset)
    everyone = cluster.study("everyone", "mpc", SYNTH_SCHEMA_TOML, COUNT, extra_study=QUICK,
                             parties=list(HOSPITALS))
    assert run_study(everyone).results["n"].value == 300 * len(HOSPITALS)


@pytest.mark.timeout(90)
def test_ckks_needs_epsilon_on_a_default_node(cluster) -> None:  # type: ignore[no-untyped-def]
    parties = ["hospital-a", "hospital-b", "hospital-c"]
    exact = cluster.study("exact-ckks", "ckks", SYNTH_SCHEMA_TOML, MEAN, parties=parties)
    with pytest.raises(PolicyError, match='exact CKKS results of age.*ckks = "epsilon"'):
        run_study(exact)
    noisy = cluster.study("noisy-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY, parties=parties)
    assert abs(run_study(noisy).results["n"].value - 900) < 200


@pytest.fixture(scope="module")
def rogue_compute(cluster) -> Path:  # type: ignore[no-untyped-def]
    """A compute server run with the coordinator's certificate; returns its audit log."""
    folder = cluster.root / "rogue"
    config = write(folder / "compute.toml", compute_toml("coordinator", "127.0.0.1:0",
                                                         cluster.pki))
    cluster.addresses["rogue"] = cluster.servers.start(
        "rogue", ["compute", "serve", "--config", str(config)]).address
    return folder / "audit" / "coordinator.jsonl"


def rogue_events(log: Path) -> set[str]:
    return {json.loads(line)["event"] for line in log.read_text().splitlines()}


@pytest.mark.timeout(60)
def test_the_coordinator_cannot_name_itself_compute(cluster, rogue_compute: Path) -> None:  # type: ignore[no-untyped-def]
    study = cluster.study("own-compute", "ckks", SYNTH_SCHEMA_TOML, NOISY, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b", "hospital-c"],
                          address_override={"coordinator": cluster.addresses["rogue"]},
                          compute="coordinator")
    with pytest.raises(PolicyError, match="sends ciphertexts to 'coordinator'; this node sends "
                                          "them only to its compute node 'compute'"):
        run_study(study)
    assert "job_open" in rogue_events(rogue_compute)  # the coordinator reached its server
    assert "contribution" not in rogue_events(rogue_compute)  # no hospital did


@pytest.mark.timeout(60)
def test_a_server_at_the_compute_address_must_prove_it_is_compute(  # type: ignore[no-untyped-def]
        cluster, rogue_compute: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job names the right compute node at the coordinator's address: the hospitals'
    TLS handshake expects a certificate naming "compute" and gets the coordinator's."""
    rogue = cluster.addresses["rogue"]
    real_get = ChannelSet.get
    # the attacking coordinator opens the job at its own server under its own name
    monkeypatch.setattr(ChannelSet, "get", lambda self, name, address: real_get(
        self, "coordinator" if address == rogue else name, address))
    study = cluster.study("fake-compute", "ckks", SYNTH_SCHEMA_TOML, NOISY, extra_study=QUICK,
                          parties=["hospital-a", "hospital-b", "hospital-c"],
                          address_override={"compute": rogue})
    opened = sum(1 for line in rogue_compute.read_text().splitlines() if "job_open" in line)
    with pytest.raises(PartyError, match="'compute'.*the certificate presented there names "
                                         "another party"):
        run_study(study)
    after = rogue_compute.read_text().splitlines()
    assert sum(1 for line in after if "job_open" in line) == opened + 1
    assert "contribution" not in rogue_events(rogue_compute)


@pytest.fixture(scope="module")
def misconfigured(cluster_factory, cohort):  # type: ignore[no-untyped-def]
    """Two hospitals whose rosters wrongly list "coordinator", and the coordinator's node."""
    pair = ["hospital-a", "hospital-b"]
    roster = [*pair, "coordinator"]
    cluster = cluster_factory({h: cohort[h] for h in pair}, rosters={h: roster for h in pair})
    start_coordinator_node(cluster, cohort, pair)
    return cluster


@pytest.mark.timeout(90)
def test_a_coordinator_certificate_cannot_exchange_mpc_messages(misconfigured) -> None:  # type: ignore[no-untyped-def]
    study = misconfigured.study("roles-mpc", "mpc", SYNTH_SCHEMA_TOML, MEAN, extra_study=QUICK,
                                parties=["hospital-a", "hospital-b", "coordinator"])
    with pytest.raises(SecureCalcError):
        run_study(study)
    refusal = "the certificate of coordinator is a coordinator certificate; only a hospital"
    for hospital in ("hospital-a", "hospital-b"):
        assert refusal in (misconfigured.root / "logs" / f"{hospital}.log").read_text()
        ends = [e["data"] for e in events(misconfigured, hospital) if e["event"] == "job_end"]
        assert not [e for e in ends if e.get("results")]  # nothing released


@pytest.mark.timeout(90)
def test_a_coordinator_certificate_cannot_submit_ciphertexts(misconfigured) -> None:  # type: ignore[no-untyped-def]
    study = misconfigured.study("roles-ckks", "ckks", SYNTH_SCHEMA_TOML, NOISY,
                                extra_study=QUICK,
                                parties=["hospital-a", "hospital-b", "coordinator"])
    with pytest.raises(SecureCalcError, match="the certificate of coordinator is a coordinator "
                                              "certificate; only a hospital"):
        run_study(study)
    compute = {e["event"] for e in events(misconfigured, "compute")}
    assert "job_open" in compute and "sum_released" not in compute
    sites = {e["data"]["site"] for e in events(misconfigured, "compute")
             if e["event"] == "contribution"}
    assert "coordinator" not in sites
