"""An untrusted coordinator picks the compute node and its own roles: attacks that only TLS
and real processes show.

The coordinator writes the study, so it may name its own server as the compute node, or put
that server at the compute node's address, or exchange MPC messages from its own node. Each
must be refused by the hospitals' own configuration and the roles the study CA put in the
certificates, before anything is encrypted or released. (The refusals that are the roles'
logic, a coordinator or a stranger as a party, too few hospitals or a subset, exact CKKS on a
default node, are tests/inprocess/test_roster.py and test_policy.py.)
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

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
COUNT = '[[analysis]]\nid = "n"\nkind = "count"\n'
MEAN = '[[analysis]]\nid = "age"\nkind = "mean"\ncolumn = "age"\n'
NOISY = COUNT + "epsilon = 1.0\n"
QUICK = "peer_timeout_seconds = 5\ntimeout_seconds = 30\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=len(HOSPITALS), rows=300,
                         seed=3, names=HOSPITALS)
    return dict(zip(HOSPITALS, files, strict=True))


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


@pytest.fixture(scope="module")
def cluster(cluster_factory, cohort):  # type: ignore[no-untyped-def]
    """Three hospitals and a compute node."""
    return cluster_factory(cohort)


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
