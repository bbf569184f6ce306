"""The package's front door."""

import subprocess
import sys

import pytest


@pytest.mark.timeout(60)
def test_import_is_cheap_and_has_no_side_effects() -> None:
    code = ("import sys, securecalc; "
            "heavy = {'grpc', 'mpyc', 'tenseal', 'numpy'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(60)
def test_public_api() -> None:
    import securecalc

    assert callable(securecalc.run_study)
    assert issubclass(securecalc.PolicyError, securecalc.SecureCalcError)
    with pytest.raises(AttributeError):
        securecalc.nothing_here  # noqa: B018


@pytest.mark.timeout(60)
def test_core_imports_neither_grpc_nor_crypto_libraries() -> None:
    code = ("import sys, securecalc.core.config, securecalc.core.kinds, securecalc.core.job, "
            "securecalc.core.policy, securecalc.core.encoding; "
            "print(sorted({'grpc', 'mpyc', 'tenseal'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
