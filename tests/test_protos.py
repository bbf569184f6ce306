"""The committed generated modules must match protos/."""

import pytest

from securecalc.transport import protogen


@pytest.mark.timeout(60)
def test_generated_code_is_current() -> None:
    stale = protogen.stale_files()
    assert stale == [], f"run `make protos`: stale generated modules {stale}"
