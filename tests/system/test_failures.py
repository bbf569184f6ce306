"""A party that dies or hangs mid-study: the study fails fast, names it, releases nothing.
(A compute node that is down, and a party lost mid-study, are also
tests/inprocess/test_failures.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from securecalc.coordinator.study import run_study
from securecalc.errors import PartyError
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc_bench.latency import LATENCY_ENV

# 8 analyses x 2 rounds x 250 ms of injected latency: the MPC study takes about 4 s, so a
# party stopped after 1.5 s is stopped in the middle of the secure computation.
SLOW = {LATENCY_ENV: "250"}
FAST_FAILURE = "timeout_seconds = 60\npeer_timeout_seconds = 5\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    names = ("hospital-a", "hospital-b", "hospital-c")
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=2000, seed=3,
                         names=names)
    return dict(zip(names, files, strict=True))


def _fails_naming(study: Path, party: str, within: float) -> PartyError:
    started = time.monotonic()
    with pytest.raises(PartyError) as info:
        run_study(study)
    elapsed = time.monotonic() - started
    assert info.value.party == party, str(info.value)
    assert elapsed < within, f"took {elapsed:.1f} s: {info.value}"
    return info.value


@pytest.mark.timeout(90)
def test_mpc_party_killed_mid_study(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False, env=SLOW)
    study = cluster.study("killed", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study=FAST_FAILURE)
    timer = threading.Timer(1.5, cluster.servers.servers["hospital-b"].kill)
    timer.start()
    try:
        _fails_naming(study, "hospital-b", within=30)
    finally:
        timer.cancel()


@pytest.mark.timeout(90)
def test_mpc_party_hung_mid_study(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False, env=SLOW)
    study = cluster.study("hung", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study=FAST_FAILURE)
    victim = cluster.servers.servers["hospital-c"].process
    timer = threading.Timer(1.5, os.killpg, (victim.pid, signal.SIGSTOP))
    timer.start()
    try:
        _fails_naming(study, "hospital-c", within=30)
    finally:
        timer.cancel()
        os.killpg(victim.pid, signal.SIGCONT)


@pytest.mark.timeout(90)
def test_mpc_study_still_works_after_a_failed_one(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, with_compute=False)
    study = cluster.study("ok", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study=FAST_FAILURE)
    victim = cluster.servers.servers["hospital-a"].process
    os.killpg(victim.pid, signal.SIGSTOP)
    try:
        _fails_naming(study, "hospital-a", within=30)
    finally:
        os.killpg(victim.pid, signal.SIGCONT)
    assert run_study(study).results["patients"].value == 6000


@pytest.mark.timeout(90)
def test_ckks_site_hung(cluster_factory, cohort) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(cohort, ckks="exact")
    study = cluster.study("hungsite", "ckks", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study="timeout_seconds = 60\n")
    victim = cluster.servers.servers["hospital-b"].process
    os.killpg(victim.pid, signal.SIGSTOP)
    try:
        _fails_naming(study, "hospital-b", within=30)
    finally:
        os.killpg(victim.pid, signal.SIGCONT)


@pytest.mark.timeout(90)
def test_insecure_development_mode_end_to_end(tmp_path: Path, cohort) -> None:  # type: ignore[no-untyped-def]
    """--insecure works when every process says so, and is refused by a TLS node."""
    from securecalc.launch import ServerGroup
    from securecalc.studyfolder import node_toml, study_toml, write

    with ServerGroup(tmp_path) as servers:
        addresses = {}
        for name, data in cohort.items():
            config = write(tmp_path / f"{name}.toml",
                           node_toml(name, "127.0.0.1:0", data, tmp_path / "no-pki", list(cohort)))
            addresses[name] = servers.start(
                name, ["node", "serve", "--config", str(config), "--insecure"]).address
        study = write(tmp_path / "study.toml", study_toml(
            "insecure", "mpc", list(addresses.items()), tmp_path / "no-pki", SYNTH_SCHEMA_TOML,
            DEMO_ANALYSES_TOML))
        assert run_study(study, insecure=True).results["patients"].value == 6000
        for name in [*cohort, "coordinator"]:  # the release report reached every node
            events = (tmp_path / "audit" / f"{name}.jsonl").read_text()
            assert "heads_not_delivered" not in events, name
            assert name == "coordinator" or '"release_reported"' in events, name
        with pytest.raises(PartyError):  # TLS coordinator against insecure nodes: no handshake
            from securecalc.pki import init_pki

            init_pki(tmp_path / "no-pki", coordinators=["coordinator"])
            run_study(study)
