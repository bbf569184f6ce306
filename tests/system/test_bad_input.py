"""Bad input through the real command line: one clear line, exit status 1, nothing leaked.
(Mistakes in a study file itself are tests/inprocess/test_study_file.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from securecalc.pki import Role, init_pki, issue_certificate
from securecalc.studyfolder import node_toml, study_toml, write

SCHEMA = """
[schema.age]
type = "int"
min = 0
max = 120

[schema.bmi]
type = "float"
min = 10.0
max = 80.0

[schema.arm]
type = "category"
levels = ["a", "b"]

[schema.flag]
type = "int"
min = 0
max = 1
"""
GOOD = "age,bmi,arm,flag\n" + "".join(f"{30 + i},{20 + i / 10},{'ab'[i % 2]},1\n"
                                      for i in range(40))
CATALOGUE = SCHEMA.replace("[schema.", "[catalogue.")
# hospital-b's file: every column is wrong in its own way, with values that must not leak
BAD = ("age,bmi,arm,flag\n" + "".join(f"{30 + i},{20 + i / 10},{'ab'[i % 2]},0\n"
                                      for i in range(10))
       + "777,20.5,a,1\n" + "33,20.5,a,NaN\n" + "31,seventeen,a,1\n" + "32,21.5,zebra,0\n")


def securecalc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", *args], capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("securecalc: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bad_cluster(cluster_factory, tmp_path_factory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("bad-data")
    files = {"hospital-a": write(data / "a.csv", GOOD), "hospital-b": write(data / "b.csv", BAD),
             "hospital-c": write(data / "c.csv", GOOD)}
    # hospital-b offers no column: its file does not fit any, and it counts rows only
    return cluster_factory(files, extra_names=("mallory",), with_compute=False,
                           catalogue={"hospital-a": CATALOGUE, "hospital-b": "[catalogue]\n",
                                      "hospital-c": CATALOGUE})


def study_file(cluster, name: str, analyses: str, *, cert_name: str = "coordinator",  # type: ignore[no-untyped-def]
               parties: list[tuple[str, str]] | None = None) -> Path:
    parties = parties or [(p, cluster.addresses[p]) for p in ("hospital-a", "hospital-b",
                                                               "hospital-c")]
    text = study_toml(name, "mpc", parties, cluster.pki, SCHEMA, analyses,
                      extra_study="peer_timeout_seconds = 5\n")
    text = text.replace("coordinator.crt", f"{cert_name}.crt").replace(
        "coordinator.key", f"{cert_name}.key")
    return write(cluster.root / f"{name}.toml", text)


def analysis(kind: str, column: str, where: str | None = None) -> str:
    text = f'[[analysis]]\nid = "x"\nkind = "{kind}"\ncolumn = "{column}"\n'
    return text + (f'where = "{where}"\n' if where else "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("column", "secret", "fault", "row"), [
    ("age", "777", "outside the declared range", "row 11 (line 12)"),
    ("bmi", "seventeen", "not a number", "row 13 (line 14)"),
    ("arm", "zebra", "not a level", "row 14 (line 15)"),
    ("flag", "NaN,", "NaN is not allowed in int column flag", "row 12 (line 13)"),
])
def test_a_node_whose_data_do_not_fit_its_catalogue_refuses_to_start(
        tmp_path: Path, column: str, secret: str, fault: str, row: str) -> None:
    """Values are checked when the node starts, never when a study asks: the node's log names
    the row and the fault, its one-line error only the column."""
    offered = CATALOGUE.split("\n\n")[["age", "bmi", "arm", "flag"].index(column)]
    config = write(tmp_path / "b.toml", node_toml("hospital-b", "127.0.0.1:0",
                                                  write(tmp_path / "b.csv", BAD), tmp_path,
                                                  ["hospital-b"], offered))
    result = securecalc("node", "serve", "--insecure", "--config", str(config))
    line = one_line_error(result)
    assert "hospital-b" in line and repr(column) in line, line
    assert secret not in line and fault not in line, line
    assert not any(ch.isdigit() for ch in line.replace(str(tmp_path), "")), line  # no row
    log = result.stderr.replace(line, "")
    assert fault in log and row in log, log
    assert "listening" not in result.stdout


@pytest.mark.timeout(60)
def test_good_column_of_a_node_with_bad_data_still_works(bad_cluster) -> None:  # type: ignore[no-untyped-def]
    bad_free = study_file(bad_cluster, "fine", '[[analysis]]\nid = "n"\nkind = "count"\n')
    result = securecalc("study", "run", str(bad_free))
    assert result.returncode == 0, result.stderr
    assert "94" in result.stdout  # 40 + 14 + 40 rows


@pytest.mark.timeout(60)
def test_unknown_party_certificate_is_refused(bad_cluster) -> None:  # type: ignore[no-untyped-def]
    study = study_file(bad_cluster, "mallory", analysis("mean", "age"), cert_name="mallory")
    line = one_line_error(securecalc("study", "run", str(study)))
    assert "refused" in line and "mallory" in line, line


@pytest.mark.timeout(60)
def test_a_hospital_cannot_act_as_coordinator(bad_cluster) -> None:  # type: ignore[no-untyped-def]
    study = study_file(bad_cluster, "impostor", analysis("mean", "age"), cert_name="hospital-a")
    line = one_line_error(securecalc("study", "run", str(study)))
    assert "refused" in line, line


@pytest.mark.timeout(60)
def test_certificate_from_another_ca(bad_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other-pki"
    init_pki(other, coordinators=["coordinator"])
    study = study_file(bad_cluster, "otherca", analysis("mean", "age"))
    text = study.read_text().replace(str(bad_cluster.pki / "coordinator"),
                                     str(other / "coordinator"))
    text = text.replace(f'ca = "{bad_cluster.pki / "ca.crt"}"', f'ca = "{other / "ca.crt"}"')
    line = one_line_error(securecalc("study", "run", str(write(study, text))))
    assert "hospital-" in line, line


@pytest.mark.timeout(60)
def test_unreachable_address_fails_fast(bad_cluster) -> None:  # type: ignore[no-untyped-def]
    parties = [("hospital-a", bad_cluster.addresses["hospital-a"]),
               ("hospital-b", "127.0.0.1:9"), ("hospital-c", bad_cluster.addresses["hospital-c"])]
    study = study_file(bad_cluster, "unreachable", analysis("mean", "age"), parties=parties)
    started = time.monotonic()
    line = one_line_error(securecalc("study", "run", str(study)))
    assert "hospital-b" in line and "unreachable" in line, line
    assert time.monotonic() - started < 20


@pytest.mark.timeout(30)
def test_node_refuses_to_start_without_its_data(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki", hospitals=["hospital-a"])
    config = write(tmp_path / "a.toml", node_toml("hospital-a", "127.0.0.1:0",
                                                  tmp_path / "missing.csv", tmp_path / "pki",
                                                  ["hospital-a"]))
    line = one_line_error(securecalc("node", "serve", "--config", str(config)))
    assert "missing.csv" in line


@pytest.mark.timeout(30)
def test_node_refuses_a_certificate_of_another_name(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki", hospitals=["hospital-a", "hospital-b"])
    data = write(tmp_path / "a.csv", GOOD)
    text = node_toml("hospital-a", "127.0.0.1:0", data, tmp_path / "pki", ["hospital-a"],
                     CATALOGUE).replace(
        "hospital-a.crt", "hospital-b.crt").replace("hospital-a.key", "hospital-b.key")
    line = one_line_error(securecalc("node", "serve", "--config",
                                     str(write(tmp_path / "a.toml", text))))
    assert "hospital-b" in line and "hospital-a" in line


@pytest.mark.timeout(30)
def test_expired_coordinator_certificate(bad_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    issue_certificate(bad_cluster.pki / "ca.crt", bad_cluster.pki / "ca.key", "coordinator",
                      tmp_path, role=Role.COORDINATOR, days=10,
                      now=datetime.now(UTC) - timedelta(days=30))
    study = study_file(bad_cluster, "expired", analysis("mean", "age"))
    text = study.read_text().replace(str(bad_cluster.pki / "coordinator"),
                                     str(tmp_path / "coordinator"))
    line = one_line_error(securecalc("study", "run", str(write(study, text))))
    assert "expired" in line, line


@pytest.mark.timeout(60)
def test_results_json_shape(bad_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = study_file(bad_cluster, "shape", analysis("mean", "age", "arm == 'a'"))
    out = tmp_path / "results.json"
    securecalc("study", "run", str(study), "--out", str(out))
    # hospital-b does not offer age: the study is refused and writes nothing
    assert not out.exists()
    study = study_file(bad_cluster, "shape2", '[[analysis]]\nid = "n"\nkind = "count"\n')
    result = securecalc("study", "run", str(study), "--out", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["study"] == "shape2" and doc["engine"] == "mpc"
    entry = doc["results"]["n"]
    assert entry["kind"] == "count" and entry["value"] == entry["n"] == 40 + 14 + 40
    assert set(entry["cost"]) == {"seconds", "bytes_sent", "rounds"}


@pytest.mark.timeout(60)
def test_a_node_at_another_partys_address_is_refused(bad_cluster) -> None:  # type: ignore[no-untyped-def]
    """The study claims hospital-b lives where hospital-c does: its certificate says otherwise."""
    parties = [("hospital-a", bad_cluster.addresses["hospital-a"]),
               ("hospital-b", bad_cluster.addresses["hospital-c"]),
               ("hospital-c", bad_cluster.addresses["hospital-c"])]
    study = study_file(bad_cluster, "impersonation", '[[analysis]]\nid = "n"\nkind = "count"\n',
                       parties=parties)
    line = one_line_error(securecalc("study", "run", str(study)))
    assert "hospital-b" in line, line
