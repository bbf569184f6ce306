"""CKKS parameters and packing layout (pure Python, no TenSEAL)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from securecalc.engines.ckks import CkksParams, Layout
from securecalc.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


def test_default_params() -> None:
    params = CkksParams()
    assert params.slots == 4096
    assert params.data_bit_sizes == (60, 40, 40)
    assert params.scale == 2.0**50


@pytest.mark.parametrize(
    ("n_values", "sizes"),
    [(1, [1]), (4095, [4095]), (4096, [4096]), (4097, [4096, 1]), (8192 + 17, [4096, 4096, 17])],
)
def test_pack_every_ciphertext_full_but_the_last(n_values: int, sizes: list[int]) -> None:
    layout = Layout(n_values, CkksParams())
    assert layout.sizes() == sizes
    assert layout.n_ciphertexts == len(sizes)
    assert sum(s.stop - s.start for s in layout.slices()) == n_values
    assert layout.slices()[-1].stop == n_values
    assert layout.slot_utilization == pytest.approx(n_values / (4096 * len(sizes)))


def test_coeff_sizes_become_a_tuple_so_params_compare_equal() -> None:
    assert CkksParams(coeff_mod_bit_sizes=[60, 40, 40, 60]) == CkksParams()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poly_modulus_degree": 1000},
        {"coeff_mod_bit_sizes": (60,)},
        {"coeff_mod_bit_sizes": (61, 40, 60)},
        {"scale_bits": 0},
        {"scale_bits": 140},
    ],
)
def test_bad_params_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CkksParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_values", [0, -3])
def test_layout_needs_a_value(n_values: int) -> None:
    with pytest.raises(ConfigError):
        Layout(n_values, CkksParams())


def test_importing_the_package_does_not_import_tenseal() -> None:
    code = (
        "import sys, securecalc.engines.ckks as c; "
        "from securecalc.engines.ckks import validate, layout; "
        "assert 'tenseal' not in sys.modules, 'tenseal imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
