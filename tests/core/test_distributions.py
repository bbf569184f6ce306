"""The light p-value and quantile functions agree with scipy.stats to 1e-12 (relative)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from securecalc.core import distributions as d


@pytest.mark.parametrize("df", [1.0, 2.5, 7.0, 29.3, 400.0, 10**5])
def test_student_t_matches_scipy_stats(df: float) -> None:
    for x in np.linspace(0, 30, 31):
        assert d.t_sf(x, df) == pytest.approx(stats.t.sf(x, df), rel=1e-12, abs=0)
        assert d.StudentT(df).sf(x) == d.t_sf(x, df)
    for q in (0.5, 0.9, 0.975, 0.999):
        assert d.t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-12)


def test_normal_and_chi_square_match_scipy_stats() -> None:
    for x in np.linspace(0, 12, 25):
        assert d.norm_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-12, abs=0)
        assert d.Normal().sf(x) == d.norm_sf(x)
        for df in (1, 2, 9, 40):
            assert d.chi2_sf(5 * x, df) == pytest.approx(stats.chi2.sf(5 * x, df), rel=1e-12,
                                                         abs=0)
    for q in (0.5, 0.9, 0.975, 0.999):
        assert d.norm_ppf(q) == pytest.approx(stats.norm.ppf(q), rel=1e-12)
