"""The audit log detects every kind of tampering: changed, reordered, deleted, inserted and
truncated records, and forged checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from securecalc.audit.chain import make_record
from securecalc.audit.log import AuditLog
from securecalc.audit.verify import verify_log
from securecalc.pki import init_pki

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def signed_log(tmp_path: Path) -> tuple[Path, Path, dict]:
    init_pki(tmp_path / "pki", hospitals=["hospital-a", "hospital-b"])
    log = AuditLog(tmp_path / "audit.jsonl", party="hospital-a",
                   key_pem=(tmp_path / "pki" / "hospital-a.key").read_bytes(),
                   cert_pem=(tmp_path / "pki" / "hospital-a.crt").read_bytes())
    for i in range(6):
        log.append("job_end", job=f"j{i}", bytes_sent=100 * i)
    head = log.checkpoint()
    log.append("study_received", study="s", analyses=["mean_age"])
    return tmp_path / "audit.jsonl", tmp_path / "pki" / "ca.crt", head


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rewrite(path: Path, new: list[str]) -> None:
    path.write_text("\n".join(new) + "\n")


def test_intact_log_verifies(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, head = signed_log
    report = verify_log(path, ca=ca, heads=[head])
    assert report.ok, report.problems
    assert len(report.records) == 8 and report.checkpoints == 1


def test_resumes_the_chain_after_a_restart(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, _ = signed_log
    AuditLog(path, party="hospital-a").append("node_start")
    assert verify_log(path, ca=ca).ok


def test_changed_record(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, _ = signed_log
    content = lines(path)
    content[2] = content[2].replace('"bytes_sent": 200', '"bytes_sent": 999')
    rewrite(path, content)
    assert any("was changed" in str(p) for p in verify_log(path, ca=ca).problems)


def test_changed_record_with_recomputed_hash(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, head = signed_log
    records = [json.loads(line) for line in lines(path)]
    forged = make_record(3, records[2]["time"], "job_end", {"job": "j2", "bytes_sent": 1},
                         records[1]["hash"])
    content = lines(path)
    content[2] = json.dumps(forged)
    rewrite(path, content)
    problems = [str(p) for p in verify_log(path, ca=ca, heads=[head]).problems]
    assert problems  # the next record no longer follows, and the signed head differs


def test_reordered_records(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, _ = signed_log
    content = lines(path)
    content[1], content[2] = content[2], content[1]
    rewrite(path, content)
    assert any("reordered" in str(p) for p in verify_log(path, ca=ca).problems)


def test_deleted_record(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, _ = signed_log
    content = lines(path)
    del content[3]
    rewrite(path, content)
    assert any("deleted" in str(p) for p in verify_log(path, ca=ca).problems)


def test_inserted_record(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, _ = signed_log
    content = lines(path)
    previous = json.loads(content[2])
    content.insert(3, json.dumps(make_record(4, previous["time"], "job_end", {"job": "x"},
                                             previous["hash"])))
    rewrite(path, content)
    assert any("inserted" in str(p) for p in verify_log(path, ca=ca).problems)


def test_truncated_log_is_caught_by_a_held_head(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, head = signed_log
    rewrite(path, lines(path)[:4])
    assert verify_log(path, ca=ca).ok  # alone, a clean prefix looks valid ...
    problems = [str(p) for p in verify_log(path, ca=ca, heads=[head]).problems]
    assert any("truncated" in p for p in problems)  # ... but not to a party holding our head


def test_forged_checkpoint_signature(signed_log) -> None:  # type: ignore[no-untyped-def]
    path, ca, head = signed_log
    forged = {**head, "count": 2, "head": json.loads(lines(path)[1])["hash"]}
    assert any("bad signature" in str(p)
               for p in verify_log(path, ca=ca, heads=[forged]).problems)


def test_checkpoint_from_another_ca(signed_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _, head = signed_log
    init_pki(tmp_path / "other", hospitals=["hospital-a"])
    problems = verify_log(path, ca=tmp_path / "other" / "ca.crt").problems
    assert any("not issued by the study CA" in str(p) for p in problems)


def test_cli_verify_and_show(signed_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, ca, head = signed_log
    head_file = tmp_path / "head.json"
    head_file.write_text(json.dumps(head))
    run = [sys.executable, "-m", "securecalc", "audit"]
    ok = subprocess.run([*run, "verify", str(path), "--ca", str(ca), "--head", str(head_file)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr
    shown = subprocess.run([*run, "show", str(path)], capture_output=True, text=True)
    assert shown.returncode == 0 and "checkpoint" in shown.stdout and "job_end" in shown.stdout
    rewrite(path, lines(path)[:3])
    bad = subprocess.run([*run, "verify", str(path), "--head", str(head_file)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "truncated" in bad.stderr
