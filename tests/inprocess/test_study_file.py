"""Mistakes in a study file, through ``securecalc study run``'s code in this process: one
clear line naming the file and the field, exit status 1, no traceback, and no node contacted
(the same assertions as tests/system/test_bad_input.py did with a ``securecalc`` process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securecalc import cli
from securecalc.studyfolder import study_toml, write
from tests.system.test_bad_input import SCHEMA, analysis


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one ``securecalc: error:`` line of ``securecalc <argv>``, which must exit with 1."""
    capsys.readouterr()
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    assert status == 1, (captured.out, captured.err)
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("securecalc: error:")]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("analyses", "expected"), [
    (analysis("mean", "height"), ["analysis[0].column", "unknown column 'height'"]),
    (analysis("mean", "age", "age >> 5"), ["analysis[0].where", "age >> 5"]),
    (analysis("mean", "age", "arm == 'c'"), ["analysis[0].where", "'c'"]),
    (analysis("mean", "arm"), ["analysis[0].column", "category"]),
    (analysis("mode", "age"), ["analysis[0].kind", "mode"]),
])
def test_study_file_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str], analyses: str,
                             expected: list[str]) -> None:
    parties = [(f"hospital-{c}", f"127.0.0.1:{5000 + i}") for i, c in enumerate("abc")]
    study = write(tmp_path / "study.toml",
                  study_toml("s", "mpc", parties, tmp_path, SCHEMA, analyses))
    line = one_line_error(capsys, "study", "run", str(study))
    assert str(study) in line
    for fragment in expected:
        assert fragment in line, line


@pytest.mark.timeout(30)
def test_missing_study_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, "study", "run", str(tmp_path / "nope.toml"))
    assert "nope.toml" in line and "not found" in line
