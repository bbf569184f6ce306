"""CKKS parameters and how a vector of values is packed into ciphertexts (pure, no TenSEAL).

A ciphertext costs the same whether it carries one value or ``slots`` values, so a vector of
``n_values`` is packed into ``ceil(n_values / slots)`` ciphertexts: every one full except the
last. Parameters and layout are public and agreed by every party before anything is encrypted.

Precision (measured with 3 sites, N=8192): CKKS error is absolute, not relative. Each decrypted
value is off by about ``1e-8 * 2**(40 - scale_bits)`` (encryption noise) plus about
``3e-16 * max|value|`` where the max runs over every value in the SAME ciphertext (SEAL encodes
and decodes in double precision, so one large value blurs all its neighbours: a 1e12 beside
unit values puts 3e-4 on each of them). Values near 1e-3 need ``scale_bits=50`` for 1e-6
relative error; statistics of very different magnitudes should be normalized (e.g. divided by
public powers of two) before they share a ciphertext.

The default scale is 2**50 rather than TenSEAL's customary 2**40: additive studies never
rescale, so the larger scale costs nothing but headroom (values up to about 7e19 are still
accepted) and makes the encryption noise about 1000 times smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from securecalc.core.limits import CKKS_CIPHERTEXTS
from securecalc.errors import ConfigError

_DEGREES = (1024, 2048, 4096, 8192, 16384, 32768)


@dataclass(frozen=True)
class CkksParams:
    """CKKS encryption parameters (defaults: 128-bit security, 4096 slots, scale 2**50).

    Invalid values raise :class:`ConfigError` (they may come from a study file or a peer).

    ``coeff_mod_bit_sizes`` lists the RNS primes; the last one is the special (key-switching)
    prime, so a fresh ciphertext lives under the first ``len - 1`` of them.
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 40, 60)
    scale_bits: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeff_mod_bit_sizes", tuple(self.coeff_mod_bit_sizes))
        if self.poly_modulus_degree not in _DEGREES:
            raise ConfigError(f"must be one of {_DEGREES}", field="poly_modulus_degree")
        sizes = self.coeff_mod_bit_sizes
        if len(sizes) < 2 or not all(isinstance(b, int) and 2 <= b <= 60 for b in sizes):
            raise ConfigError("needs at least 2 primes of 2..60 bits", field="coeff_mod_bit_sizes")
        if not 1 <= self.scale_bits < sum(self.data_bit_sizes):
            raise ConfigError("must lie between 1 and the data modulus size", field="scale_bits")

    @property
    def slots(self) -> int:
        """Values one ciphertext holds."""
        return self.poly_modulus_degree // 2

    @property
    def data_bit_sizes(self) -> tuple[int, ...]:
        """Bit sizes of the primes a fresh ciphertext is reduced modulo (special prime dropped)."""
        return self.coeff_mod_bit_sizes[:-1]

    @property
    def scale(self) -> float:
        """The encoding scale, ``2.0 ** scale_bits``."""
        return 2.0**self.scale_bits

    @property
    def max_abs_value(self) -> float:
        """Largest magnitude accepted for encryption.

        Leaves 24 bits of headroom below the data modulus, so sums of up to about 8 million
        contributions at this bound cannot wrap around.
        """
        return 2.0 ** (sum(self.data_bit_sizes) - self.scale_bits - 24)


DEFAULT_PARAMS = CkksParams()


@dataclass(frozen=True)
class Layout:
    """How ``n_values`` values are packed into ciphertexts under ``params``."""

    n_values: int
    params: CkksParams = DEFAULT_PARAMS

    def __post_init__(self) -> None:
        if not isinstance(self.n_values, int) or self.n_values < 1:
            raise ConfigError("a layout needs at least one value", field="n_values")
        CKKS_CIPHERTEXTS.check(self.n_ciphertexts, "n_values",
                               hint="the study packs too many values for one CKKS job")

    @property
    def n_ciphertexts(self) -> int:
        return max(1, math.ceil(self.n_values / self.params.slots))

    def sizes(self) -> list[int]:
        """Values held by each ciphertext: all full except the last."""
        full = self.params.slots
        last = self.n_values - full * (self.n_ciphertexts - 1)
        return [full] * (self.n_ciphertexts - 1) + [last]

    def slices(self) -> list[slice]:
        """Where each ciphertext's values sit in the flat vector."""
        starts = range(0, self.n_values, self.params.slots)
        return [slice(s, s + n) for s, n in zip(starts, self.sizes(), strict=True)]

    @property
    def slot_utilization(self) -> float:
        """Fraction of the encrypted slots that carry values."""
        return self.n_values / (self.n_ciphertexts * self.params.slots)
