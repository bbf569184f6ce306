"""The discrete Laplace mechanism: exact sampling, scales from the plan's bounds, room for
the noise in the engines' numbers, and which analyses may ask for it."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from securecalc.core.encoding import FRACTION_BITS, mpc_bound, mpc_encode
from securecalc.core.plans import MAX_ROWS_PER_SITE, SumPlan
from securecalc.core.privacy import (
    NOISE_CAP_SCALES,
    NoisePlan,
    bernoulli_exp,
    describe,
    discrete_laplace,
    noise_plan,
    parse_epsilon,
    sample_noise,
    widened,
)
from securecalc.core.schema import schema_from_mapping
from securecalc.core.study_model import analysis_from_mapping
from securecalc.errors import ConfigError

ROWS = MAX_ROWS_PER_SITE


def test_bernoulli_exp_has_probability_exp_minus_gamma() -> None:
    rng = random.Random(1)
    for gamma in (Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2)):
        hits = sum(bernoulli_exp(gamma, rng) for _ in range(20000))
        expected = math.exp(-float(gamma))
        assert abs(hits / 20000 - expected) < 4 * math.sqrt(expected * (1 - expected) / 20000
                                                             + 1e-9), gamma


@pytest.mark.parametrize("scale", [Fraction(1, 2), Fraction(3), Fraction(10**6)])
def test_discrete_laplace_matches_its_pmf(scale: Fraction) -> None:
    rng = random.Random(7)
    draws = [discrete_laplace(scale, rng) for _ in range(20000)]
    q = math.exp(-1 / float(scale))
    variance = 2 * q / (1 - q) ** 2
    mean = sum(draws) / len(draws)
    var = sum(d * d for d in draws) / len(draws)
    assert abs(mean) < 5 * math.sqrt(variance / len(draws))
    assert abs(var / variance - 1) < 0.08
    if scale < 5:  # frequencies of the small values against the exact pmf
        counts = Counter(draws)
        for z in range(-3, 4):
            p = (1 - q) / (1 + q) * q ** abs(z)
            assert abs(counts[z] / len(draws) - p) < 5 * math.sqrt(p / len(draws)), z


def test_discrete_laplace_is_symmetric_with_zero_counted_once() -> None:
    rng = random.Random(3)
    draws = Counter(discrete_laplace(Fraction(1), rng) for _ in range(40000))
    q = math.exp(-1)
    assert abs(draws[0] / 40000 - (1 - q) / (1 + q)) < 0.01
    assert abs(draws[1] - draws[-1]) < 5 * math.sqrt(draws[1])


def _moment_plan(a: int, integral: bool) -> SumPlan:
    return SumPlan((True, integral, integral), (ROWS, ROWS * a, ROWS * a * a), (1, a, a * a))


def test_scales_follow_the_per_row_bounds_and_the_slots_a_row_touches() -> None:
    noise = noise_plan(_moment_plan(50, True), 0.5, "all")
    assert noise.scales == (Fraction(6), Fraction(300), Fraction(15000))  # 3 * u / 0.5
    assert noise.grids == (1, 1, 1)
    cells = noise_plan(SumPlan.counts(4), 0.1, "one")
    assert cells.scales == (Fraction(10),) * 4  # a row falls in one cell: 1 / 0.1
    floats = noise_plan(_moment_plan(3, False), 1.0, "all")
    assert floats.grids == (1, Fraction(1, 2**FRACTION_BITS), Fraction(1, 2**FRACTION_BITS))


def test_shares_lie_on_the_grid_and_within_the_widened_bounds() -> None:
    plan = _moment_plan(3, False)
    noise = noise_plan(plan, 0.2, "all")
    room = widened(plan, noise)
    rng = random.Random(11)
    for _ in range(200):
        shares = sample_noise(noise, rng)
        assert shares[0].denominator == 1
        assert all((z / g).denominator == 1 for z, g in zip(shares, noise.grids, strict=True))
        assert all(abs(z) <= NOISE_CAP_SCALES * s for z, s in zip(shares, noise.scales,
                                                                 strict=True))
    # an input at the plan's bound plus the largest share still encodes within the MPC bound
    top = [b + c for b, c in zip(plan.bounds, noise.caps, strict=True)]
    assert max(abs(v) for v in mpc_encode(room, top)) < mpc_bound(room)
    assert all(b > a for a, b in zip(plan.bounds, room.bounds, strict=True))


def test_default_randomness_is_the_system_generator() -> None:
    noise = noise_plan(SumPlan.counts(1), 1.0, "one")
    assert len({sample_noise(noise)[0] for _ in range(50)}) > 1


@pytest.mark.parametrize("value", [0, -1, 0.0, float("nan"), float("inf"), 11, True, "1"])
def test_bad_epsilons_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="epsilon"):
        parse_epsilon(value)


SCHEMA = schema_from_mapping({"age": {"type": "int", "min": 0, "max": 120},
                              "sex": {"type": "category", "levels": ["f", "m"]}})


def test_an_analysis_carries_its_epsilon_into_its_table() -> None:
    a = analysis_from_mapping({"id": "m", "kind": "mean", "column": "age", "epsilon": 0.5},
                              index=0, schema=SCHEMA)
    assert a.epsilon == 0.5 and a.table()["epsilon"] == 0.5
    b = analysis_from_mapping(a.table(), index=0, schema=SCHEMA)
    assert b == a and b.epsilon == 0.5


def test_kinds_without_a_noisy_form_refuse_epsilon_by_name() -> None:
    with pytest.raises(ConfigError, match=r"analysis\[2\]\.epsilon.*'median'.*comparison"):
        analysis_from_mapping({"id": "q", "kind": "median", "column": "age", "epsilon": 1},
                              index=2, schema=SCHEMA, path="study.toml")
    with pytest.raises(ConfigError, match=r"analysis\[0\]\.epsilon.*must be a number"):
        analysis_from_mapping({"id": "q", "kind": "mean", "column": "age", "epsilon": -2},
                              index=0, schema=SCHEMA)


def test_the_noise_of_a_fine_grid_is_described_not_divided_by_zero() -> None:
    """A mean at epsilon 0.5 on a column with wide bounds: its sum slot's grid (2**-48) is so
    much finer than its scale that exp(-grid/scale) rounds to 1. Found by the adversary
    search: the coordinator failed after every node had charged the run."""
    plan = NoisePlan(epsilon=0.5, scales=(Fraction(4), Fraction(200)),
                     grids=(Fraction(1), Fraction(1, 2**48)))
    count_std, sum_std = plan.std(3)
    assert math.isfinite(sum_std) and sum_std == pytest.approx(200 * math.sqrt(6), rel=1e-9)
    assert count_std == pytest.approx(math.sqrt(6 * math.exp(-0.25)) / -math.expm1(-0.25))
    assert "noise" in describe(plan, 3)
