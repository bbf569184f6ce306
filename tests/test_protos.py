"""The committed generated modules must match protos/."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

GENERATE = Path(__file__).resolve().parents[1] / "protos" / "generate.py"


def load_generator() -> ModuleType:
    """protos/generate.py, a development script outside the package."""
    spec = importlib.util.spec_from_file_location("protos_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(60)
def test_generated_code_is_current() -> None:
    stale = load_generator().stale_files()
    assert stale == [], f"run `make protos`: stale generated modules {stale}"
