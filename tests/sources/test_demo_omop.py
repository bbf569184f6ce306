"""``securecalc demo --source omop`` (a temporary PostgreSQL server, one OMOP database per
hospital) releases what the default demo on CSV files releases, on the same synthetic rows."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from securecalc.demo import run_demo
from tests.sources.released import assert_same_release

ROWS = 400


def _released(path: Path) -> dict[str, Any]:
    return {rid: {k: v for k, v in r.items() if k != "cost"}
            for rid, r in json.loads(path.read_text())["results"].items()}


@pytest.mark.timeout(600)
def test_the_omop_demo_releases_what_the_file_demo_releases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(rows=ROWS, workdir=tmp_path / "file", engines=("mpc",)) == 0
    assert run_demo(rows=ROWS, workdir=tmp_path / "omop", source="omop", engines=("mpc",)) == 0
    by_file = _released(tmp_path / "file" / "results-mpc.json")
    by_omop = _released(tmp_path / "omop" / "results-mpc.json")
    assert by_file["patients"]["value"] == 3 * ROWS
    assert_same_release(by_omop, by_file)
    port = int(re.search(r"PostgreSQL on 127\.0\.0\.1:(\d+)", capsys.readouterr().out)[1])
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):  # the server stopped
        s.connect(("127.0.0.1", port))
