"""The CKKS engine end to end with real TenSEAL: hospitals encrypt, a node adds, the key decrypts.

Oracle: numpy's sum of the sites' vectors. Error is measured per value relative to the sum of
the contributions' magnitudes, ``|got - want| / sum_i |x_i|`` (plain relative error when all
sites share a sign), because CKKS error is absolute: about 1e-8 per slot at scale 2**40.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest
import tenseal as ts

from securecalc.engines.ckks import (
    Accumulator,
    CiphertextRejected,
    CkksParams,
    KeyHolder,
    Layout,
    canonical_length,
    encrypt_packed,
    validate_context,
)
from securecalc.errors import CryptoError, DataError, ProtocolError

DEFAULT = CkksParams()
FINE = CkksParams(scale_bits=50)  # same primes, finer scale: what small magnitudes need
SLOTS = DEFAULT.slots
N_SITES = 3

Gen = Callable[[np.random.Generator, int], np.ndarray]

_holders: dict[CkksParams, KeyHolder] = {}


def holder_for(params: CkksParams) -> KeyHolder:
    if params not in _holders:
        _holders[params] = KeyHolder.create(params, max_decryptions=1000)
    return _holders[params]


def run_study(holder: KeyHolder, sites: list[np.ndarray], layout: Layout) -> np.ndarray:
    public, params_only = holder.public_context_bytes(), holder.params_context_bytes()
    accumulator = Accumulator(params_only, layout)
    for values in sites:
        accumulator.add(encrypt_packed(public, values, layout))
    assert accumulator.count == len(sites)
    decrypted = holder.decrypt(accumulator.result(), layout)
    assert len(decrypted) == layout.n_values
    return np.asarray(decrypted)


def scaled_error(got: np.ndarray, sites: list[np.ndarray]) -> float:
    want = np.sum(sites, axis=0)
    magnitude = np.sum(np.abs(sites), axis=0)
    return float(np.max(np.abs(got - want) / magnitude))


CASES: dict[str, tuple[int, CkksParams, Gen]] = {
    "mixed_signs": (100, DEFAULT, lambda r, n: r.normal(0.0, 100.0, n)),
    "near_1e9": (1000, DEFAULT, lambda r, n: r.uniform(0.999e9, 1.001e9, n)),
    "near_1e-3_scale_2^50": (1000, FINE, lambda r, n: r.uniform(0.5e-3, 1.5e-3, n)),
    "negative": (1000, DEFAULT, lambda r, n: r.uniform(-1e4, -1.0, n)),
    "several_ciphertexts": (2 * SLOTS + 17, DEFAULT, lambda r, n: r.uniform(-50, 50, n)),
    "exactly_slots": (SLOTS, DEFAULT, lambda r, n: r.uniform(0, 1, n)),
    "one_value": (1, DEFAULT, lambda r, n: r.uniform(1, 2, n)),
    "at_max_abs_value": (
        8,
        DEFAULT,
        lambda r, n: DEFAULT.max_abs_value * r.choice([-1.0, 1.0], n),
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(CASES))
def test_sum_of_three_sites_matches_numpy(case: str) -> None:
    n_values, params, gen = CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    sites = [gen(rng, n_values) for _ in range(N_SITES)]
    layout = Layout(n_values, params)
    error = scaled_error(run_study(holder_for(params), sites, layout), sites)
    print(f"{case}: n={n_values} ciphertexts={layout.n_ciphertexts} max rel error {error:.2e}")
    assert error <= 1e-6


@pytest.mark.timeout(60)
def test_small_magnitudes_at_default_scale_have_absolute_error_near_1e_8() -> None:
    """Documented limit: at 2**40 the error is ~1e-8 absolute, ~4e-6 relative near 1e-3."""
    rng = np.random.default_rng(7)
    sites = [rng.uniform(0.5e-3, 1.5e-3, SLOTS) for _ in range(N_SITES)]
    got = run_study(holder_for(DEFAULT), sites, Layout(SLOTS, DEFAULT))
    absolute = float(np.max(np.abs(got - np.sum(sites, axis=0))))
    print(
        f"scale 2^40, values ~1e-3: max abs error {absolute:.2e}, "
        f"relative {scaled_error(got, sites):.2e}"
    )
    assert absolute <= 1e-7


@pytest.mark.timeout(30)
def test_public_context_holds_only_the_public_key() -> None:
    public = holder_for(DEFAULT).public_context_bytes()
    print(f"public context: {len(public)} bytes")
    info = validate_context(public, require_public_key=True)
    assert info.has_public_key
    assert not (info.has_secret_key or info.has_relin_keys or info.has_galois_keys)
    ctx = ts.context_from(public)
    assert ctx.has_public_key()
    assert not ctx.has_secret_key() and not ctx.is_private()
    assert not ctx.has_galois_keys() and not ctx.has_relin_keys()
    assert len(public) < 1_000_000


@pytest.mark.timeout(30)
def test_params_context_holds_no_key_at_all() -> None:
    params_only = holder_for(DEFAULT).params_context_bytes()
    print(f"params context: {len(params_only)} bytes")
    info = validate_context(params_only)
    assert not (info.has_public_key or info.has_secret_key)
    ctx = ts.context_from(params_only)
    assert not ctx.has_public_key() and not ctx.has_secret_key()
    assert len(params_only) < 1000


@pytest.mark.timeout(30)
def test_every_key_holder_has_a_fresh_key() -> None:
    first, second = KeyHolder.create(), KeyHolder.create()
    assert first.public_context_bytes() != second.public_context_bytes()


@pytest.mark.timeout(30)
def test_ciphertexts_have_the_canonical_length() -> None:
    layout = Layout(SLOTS + 1, DEFAULT)
    ciphertexts = encrypt_packed(holder_for(DEFAULT).public_context_bytes(), [1.0] * 4097, layout)
    print(f"ciphertext bytes: {[len(c) for c in ciphertexts]}")
    assert [len(c) for c in ciphertexts] == [canonical_length(n, DEFAULT) for n in layout.sizes()]


def private_context(params: CkksParams = DEFAULT) -> bytes:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    return ctx.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False)


@pytest.mark.timeout(30)
def test_accumulator_refuses_a_context_with_a_secret_key() -> None:
    with pytest.raises(CryptoError, match="secret key"):
        Accumulator(private_context(), Layout(3, DEFAULT))


@pytest.mark.timeout(30)
def test_encrypt_refuses_a_context_with_a_secret_key() -> None:
    with pytest.raises(CryptoError, match="secret key"):
        encrypt_packed(private_context(), [1.0, 2.0, 3.0], Layout(3, DEFAULT))


@pytest.mark.timeout(30)
def test_encrypt_refuses_a_context_without_public_key() -> None:
    with pytest.raises(CryptoError, match="public key"):
        encrypt_packed(holder_for(DEFAULT).params_context_bytes(), [1.0], Layout(1, DEFAULT))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "other", [CkksParams(poly_modulus_degree=16384), CkksParams(coeff_mod_bit_sizes=(60, 40, 60))]
)
def test_contexts_must_match_the_layout_parameters(other: CkksParams) -> None:
    holder = holder_for(other)
    layout = Layout(3, DEFAULT)
    with pytest.raises(CryptoError, match="parameters"):
        Accumulator(holder.params_context_bytes(), layout)
    with pytest.raises(CryptoError, match="parameters"):
        encrypt_packed(holder.public_context_bytes(), [1.0, 2.0, 3.0], layout)
    with pytest.raises(CryptoError, match="parameters"):
        holder.decrypt([b""], layout)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("values", "error"),
    [
        ([1.0, float("nan"), 3.0], DataError),
        ([1.0, float("inf"), 3.0], DataError),
        ([1.0, -float("inf"), 3.0], DataError),
        ([1.0, 2.0 * DEFAULT.max_abs_value, 3.0], DataError),
        (["a", "b", "c"], DataError),
        ([1.0, 2.0], ValueError),
    ],
)
def test_encrypt_rejects_bad_values(values: list[object], error: type[Exception]) -> None:
    with pytest.raises(error):
        encrypt_packed(holder_for(DEFAULT).public_context_bytes(), values, Layout(3, DEFAULT))  # type: ignore[arg-type]


def one_contribution(holder: KeyHolder, values: list[float]) -> list[bytes]:
    return encrypt_packed(holder.public_context_bytes(), values, Layout(len(values), DEFAULT))


@pytest.mark.timeout(30)
def test_a_key_decrypts_a_bounded_number_of_results() -> None:
    holder = KeyHolder.create(max_decryptions=2)
    layout = Layout(2, DEFAULT)
    accumulator = Accumulator(holder.params_context_bytes(), layout)
    accumulator.add(one_contribution(holder, [1.0, 2.0]))
    total = accumulator.result()
    with pytest.raises(CiphertextRejected):  # malformed input does not use up the budget
        holder.decrypt([total[0][:-1]], layout)
    assert holder.decryptions_left == 2
    for _ in range(2):
        assert holder.decrypt(total, layout) == pytest.approx([1.0, 2.0], abs=1e-6)
    with pytest.raises(CryptoError):
        holder.decrypt(total, layout)


@pytest.mark.timeout(30)
def test_a_rejected_contribution_leaves_the_sum_untouched() -> None:
    holder = holder_for(DEFAULT)
    layout = Layout(2, DEFAULT)
    accumulator = Accumulator(holder.params_context_bytes(), layout)
    good = one_contribution(holder, [1.0, 2.0])
    with pytest.raises(CiphertextRejected):
        accumulator.add(good + good)  # one ciphertext too many for the layout
    with pytest.raises(CiphertextRejected):
        accumulator.add([good[0] + b"\x00"])
    assert accumulator.count == 0
    accumulator.add(good)
    accumulator.add(one_contribution(holder, [10.0, 20.0]))
    assert holder.decrypt(accumulator.result(), layout) == pytest.approx([11.0, 22.0], abs=1e-6)


@pytest.mark.timeout(30)
def test_the_sum_is_released_once() -> None:
    holder = holder_for(DEFAULT)
    layout = Layout(1, DEFAULT)
    accumulator = Accumulator(holder.params_context_bytes(), layout, min_contributions=2)
    with pytest.raises(ProtocolError, match="contributions"):
        accumulator.result()
    accumulator.add(one_contribution(holder, [1.0]))
    with pytest.raises(ProtocolError, match="contributions"):
        accumulator.result()
    accumulator.add(one_contribution(holder, [2.0]))
    first = accumulator.result()
    with pytest.raises(ProtocolError, match="released"):
        accumulator.add(one_contribution(holder, [3.0]))
    assert accumulator.result() == first
    assert holder.decrypt(first, layout) == pytest.approx([3.0], abs=1e-6)


@pytest.mark.timeout(30)
def test_tenseals_native_serialization_is_refused() -> None:
    """TenSEAL's own (zstd) output is not the canonical form and never reaches TenSEAL."""
    holder = holder_for(DEFAULT)
    ctx = ts.context_from(holder.public_context_bytes())
    native = ts.ckks_vector(ctx, [1.0, 2.0], DEFAULT.scale).serialize()
    accumulator = Accumulator(holder.params_context_bytes(), Layout(2, DEFAULT))
    with pytest.raises(CiphertextRejected) as info:
        accumulator.add([native])
    assert str(info.value) == "ciphertext rejected"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("big", [1e6, 1e9, 1e12])
def test_error_is_absolute_and_follows_the_largest_value_in_the_ciphertext(big: float) -> None:
    """Documented limit (layout.py): error ~ 1e-8 + 3e-16 * max|value in the same ciphertext|."""
    rng = np.random.default_rng(11)
    sites = [rng.uniform(0.5, 1.5, 64) for _ in range(N_SITES)]
    for values in sites:
        values[0] = big
    got = run_study(holder_for(DEFAULT), sites, Layout(64, DEFAULT))
    error = np.abs(got - np.sum(sites, axis=0))
    print(f"big={big:g}: max abs error on the unit values {error[1:].max():.2e}")
    assert error.max() <= 5e-8 + 1e-15 * N_SITES * big
