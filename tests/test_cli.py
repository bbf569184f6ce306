"""The command line's own commands, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from securecalc.core.config import load_compute_config, load_node_config, load_study_config
from securecalc.core.schema import schema_from_mapping
from securecalc.core.table import load_table
from securecalc.studyfolder import node_toml
from securecalc.synth import synth_schema, write_cohort

ROOT = Path(__file__).resolve().parents[1]


def securecalc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "securecalc", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.timeout(60)
def test_certs_init_and_refusal_to_overwrite(tmp_path: Path) -> None:
    from securecalc.roles import Role, certificate_role

    ok = securecalc("certs", "init", "--dir", str(tmp_path), "--hospitals", "hospital-a",
                    "--compute", "compute", "--coordinators", "coordinator")
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in tmp_path.iterdir()} >= {"ca.crt", "ca.key", "hospital-a.crt",
                                                    "hospital-a.key", "compute.crt",
                                                    "coordinator.crt"}
    assert certificate_role((tmp_path / "hospital-a.crt").read_bytes()) is Role.HOSPITAL
    assert certificate_role((tmp_path / "compute.crt").read_bytes()) is Role.COMPUTE
    assert certificate_role((tmp_path / "coordinator.crt").read_bytes()) is Role.COORDINATOR
    again = securecalc("certs", "init", "--dir", str(tmp_path), "--hospitals", "hospital-a")
    assert again.returncode == 1 and "securecalc: error:" in again.stderr
    bad = securecalc("certs", "init", "--dir", str(tmp_path / "x"), "--hospitals", "Hospital A")
    assert bad.returncode == 1 and "Hospital A" in bad.stderr
    old = securecalc("certs", "init", "--dir", str(tmp_path / "y"), "--names", "hospital-a")
    assert old.returncode == 1 and "--hospitals" in old.stderr and "--coordinators" in old.stderr
    assert not (tmp_path / "y").exists()


@pytest.mark.timeout(60)
def test_synth_writes_loadable_files(tmp_path: Path) -> None:
    result = securecalc("synth", "--sites", "2", "--rows", "500", "--out", str(tmp_path),
                        "--seed", "4")
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("*.csv"))
    assert [f.name for f in files] == ["hospital-a.csv", "hospital-b.csv"]
    assert all(load_table(f, synth_schema()).n_rows == 500 for f in files)
    bad = securecalc("synth", "--sites", "0", "--rows", "5", "--out", str(tmp_path))
    assert bad.returncode == 1 and "sites" in bad.stderr


@pytest.mark.timeout(60)
def test_node_describe_prints_a_schema_a_study_can_paste(tmp_path: Path) -> None:
    (data,) = write_cohort(tmp_path, sites=1, rows=200, seed=2)
    config = tmp_path / "node.toml"
    config.write_text(node_toml("hospital-a", "127.0.0.1:0", data, tmp_path / "pki",
                                  ["hospital-a"]))
    result = securecalc("node", "describe", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert schema_from_mapping(tomllib.loads(result.stdout)["schema"]) == synth_schema()
    assert "200" not in result.stdout  # the catalogue, nothing of the data


@pytest.mark.timeout(60)
def test_node_check_counts_rows_and_names_the_row_that_does_not_fit(tmp_path: Path) -> None:
    (data,) = write_cohort(tmp_path, sites=1, rows=200, seed=2)
    config = tmp_path / "node.toml"
    config.write_text(node_toml("hospital-a", "127.0.0.1:0", data, tmp_path / "pki",
                                  ["hospital-a"]))
    table = load_table(data, synth_schema())
    ok = securecalc("node", "check", "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    assert f"{data}: 200 rows fit the catalogue of hospital-a" in ok.stdout
    bmi = next(line for line in ok.stdout.splitlines() if line.startswith("bmi "))
    assert bmi.split()[:3] == ["bmi", "float", str(int(table.column("bmi").missing.sum()))]
    lines = data.read_text().splitlines()
    lines[5] = "130" + lines[5][lines[5].index(","):]
    data.write_text("\n".join(lines) + "\n")
    bad = securecalc("node", "check", "--config", str(config))
    assert bad.returncode == 1
    assert "column 'age', row 5 (line 6): '130' is outside the declared range" in bad.stderr


@pytest.mark.timeout(30)
def test_usage_errors_exit_2() -> None:
    assert securecalc("frobnicate").returncode == 2
    assert securecalc("study", "run").returncode == 2


@pytest.mark.timeout(30)
def test_examples_are_valid_configurations() -> None:
    examples = ROOT / "examples"
    for name in ("hospital-a", "hospital-b", "hospital-c"):
        node = load_node_config(examples / f"{name}.toml")
        assert node.name == name and node.data_path == examples / "data" / f"{name}.csv"
    assert load_compute_config(examples / "compute.toml").name == "compute"
    for engine in ("mpc", "ckks"):
        study = load_study_config(examples / f"study-{engine}.toml")
        assert study.engine == engine and len(study.parties) == 3


@pytest.mark.timeout(240)
def test_demo_runs_both_engines_and_stops_its_processes(tmp_path: Path) -> None:
    result = securecalc("demo", "--rows", "3000", "--dir", str(tmp_path), timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "engine mpc" in out and "engine ckks" in out and "demo finished" in out
    assert (tmp_path / "results-mpc.json").exists() and (tmp_path / "results-ckks.json").exists()
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "demo left processes running"
