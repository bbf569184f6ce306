"""Released CKKS values keep no decryption noise below the declared precision."""

import pytest

from securecalc.coordinator.ckks import release_rounding


@pytest.mark.timeout(10)
def test_noise_below_the_kept_bits_is_gone() -> None:
    exact = [1234.5, -0.25, 3.0, 0.0]
    noisy = [v + noise for v, noise in zip(exact, (3e-11, -7e-12, 1e-10, -2e-11), strict=True)]
    assert release_rounding(noisy, 20) == exact
    assert release_rounding(noisy, 20) == release_rounding(exact, 20)


@pytest.mark.timeout(10)
def test_kept_precision() -> None:
    value = 1 / 3
    assert abs(release_rounding([value], 20)[0] - value) <= 2.0**-21
    assert release_rounding([value], 0) == [0.0]
