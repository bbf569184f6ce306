"""A party that is down or stops mid-study: the study fails, names it and releases nothing,
in process (the same assertions as tests/system/test_failures.py; the real-process tests
remain for what only processes show: signals, frozen processes, TLS, keepalive)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from securecalc.errors import PartyError
from securecalc.studyfolder import DEMO_ANALYSES_TOML
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort
from securecalc_bench.latency import LATENCY_ENV

NAMES = ("hospital-a", "hospital-b", "hospital-c")
FAST_FAILURE = "timeout_seconds = 60\npeer_timeout_seconds = 5\n"
EXACT = {name: '[policy]\nckks = "exact"\n' for name in NAMES}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=2000, seed=3,
                         names=NAMES)
    return dict(zip(NAMES, files, strict=True))


def _fails_naming(parties, study, party: str, within: float) -> PartyError:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(PartyError) as info:
        parties.run(study)
    elapsed = time.monotonic() - started
    assert info.value.party == party, str(info.value)
    assert elapsed < within, f"took {elapsed:.1f} s: {info.value}"
    return info.value


@pytest.mark.timeout(60)
def test_ckks_compute_node_down(in_process, cohort) -> None:  # type: ignore[no-untyped-def]
    parties = in_process(cohort, node_extra=EXACT)
    study = parties.study("nocompute", "ckks", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study=FAST_FAILURE)
    parties.network.stop("compute")
    error = _fails_naming(parties, study, "compute", within=10)
    assert "unreachable" in str(error)
    for name in NAMES:  # refused before any site was asked
        assert not parties.events(name, "study_received")


@pytest.mark.timeout(90)
def test_mpc_party_lost_mid_study(in_process, cohort,  # type: ignore[no-untyped-def]
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # 250 ms of latency on every MPC frame: the study takes seconds, so a party stopped
    # after 1.5 s is stopped in the middle of the secure computation
    monkeypatch.setenv(LATENCY_ENV, "250")
    parties = in_process(cohort)
    study = parties.study("lost", "mpc", SYNTH_SCHEMA_TOML, DEMO_ANALYSES_TOML,
                          extra_study=FAST_FAILURE)
    timer = threading.Timer(1.5, parties.network.stop, ("hospital-b",))
    timer.start()
    try:
        error = _fails_naming(parties, study, "hospital-b", within=30)
    finally:
        timer.cancel()
    assert "stopped answering" in str(error) and "(phase: MPC job)" in str(error)
    for name in ("hospital-a", "hospital-c"):  # the others ended their job and released nothing
        assert not parties.events(name, "release_reported")
    failed = [e["data"] for e in parties.events("coordinator", "study_failed")]
    assert failed and "hospital-b" in failed[-1]["message"]
