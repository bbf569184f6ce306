"""P-values and interval quantiles from ``scipy.special``'s distribution functions.

The same functions ``scipy.stats`` evaluates for these distributions (``stdtr``, ``stdtrit``,
``ndtr``, ``ndtri``, ``chdtrc``), without importing ``scipy.stats`` (about a second of
coordinator start-up). ``scipy.special`` itself is imported on first use only: nodes never
call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _special() -> Any:
    import scipy.special

    return scipy.special


def t_sf(x: float, df: float) -> float:
    """``P(T > x)`` for Student's t with ``df`` degrees of freedom."""
    return float(_special().stdtr(df, -x))


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    return float(_special().stdtrit(df, q))


def norm_sf(x: float) -> float:
    """``P(Z > x)`` for the standard normal."""
    return float(_special().ndtr(-x))


def norm_ppf(q: float) -> float:
    """The ``q`` quantile of the standard normal."""
    return float(_special().ndtri(q))


def chi2_sf(x: float, df: float) -> float:
    """``P(X > x)`` for chi-square with ``df`` degrees of freedom."""
    return float(_special().chdtrc(df, x))


@dataclass(frozen=True)
class StudentT:
    """Student's t with ``df`` degrees of freedom (what the kinds need of it)."""

    df: float

    def sf(self, x: float) -> float:
        return t_sf(x, self.df)

    def ppf(self, q: float) -> float:
        return t_ppf(q, self.df)


@dataclass(frozen=True)
class Normal:
    """The standard normal (what the kinds need of it)."""

    def sf(self, x: float) -> float:
        return norm_sf(x)

    def ppf(self, q: float) -> float:
        return norm_ppf(q)


__all__ = ["Normal", "StudentT", "chi2_sf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]
