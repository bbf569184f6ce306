"""What a node's audit log holds of a study it took part in, in process: the request as
received, the policy decision, its job, and the release the coordinator reported (statuses
and digests, never values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securecalc.audit.events import digest
from securecalc.synth import SYNTH_SCHEMA_TOML, write_cohort

NAMES = ("hospital-a", "hospital-b", "hospital-c")
ANALYSES = ('[[analysis]]\nid = "n"\nkind = "count"\n\n'
            '[[analysis]]\nid = "age"\nkind = "mean"\ncolumn = "age"\n')


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_cohort(tmp_path_factory.mktemp("cohort"), sites=3, rows=200, seed=7,
                         names=NAMES)
    return dict(zip(NAMES, files, strict=True))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["mpc", "ckks"])
def test_a_node_audits_the_study_it_took_part_in(in_process, cohort,  # type: ignore[no-untyped-def]
                                                 engine: str) -> None:
    parties = in_process(cohort, node_extra={h: '[policy]\nckks = "exact"\n' for h in NAMES})
    result = parties.run(parties.study("audited", engine, SYNTH_SCHEMA_TOML, ANALYSES))
    assert result.results["n"].value == 600
    for name in NAMES:
        events = parties.events(name)
        job = result.job_id if engine == "mpc" else f"{result.job_id}.0"
        mine = [e["event"] for e in events if e["data"].get("job") in (job, result.job_id)]
        assert mine == ["study_received", "policy_decision", "job_start", "job_end",
                        "release_reported"], (name, mine)
        received = parties.events(name, "study_received")[-1]["data"]
        assert received["study"] == "audited" and received["engine"] == engine
        assert received["coordinator"] == "coordinator"
        assert received["parties"] == list(NAMES)
        assert [a["id"] for a in received["analyses"]] == ["n", "age"]
        assert received["compute"] == ("compute" if engine == "ckks" else None)
        assert parties.events(name, "policy_decision")[-1]["data"]["decision"] == "allowed"
        reported = parties.events(name, "release_reported")[-1]["data"]
        assert reported["coordinator"] == "coordinator"
        assert reported["outcomes"] == [
            {"analysis": rid, "status": "released", "note": "", "digest": digest(r.value)}
            for rid, r in result.results.items()]
    coordinator = [e["event"] for e in parties.events("coordinator")]
    assert coordinator[-2:] == ["study_start", "study_end"]
    if engine == "ckks":  # the compute node saw each site once and released one sum
        sites = [e["data"]["site"] for e in parties.events("compute", "contribution")]
        assert sorted(sites) == list(NAMES)
        assert len(parties.events("compute", "sum_released")) == 1
