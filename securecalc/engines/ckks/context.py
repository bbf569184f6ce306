"""Coordinator side: the one secret key of a study, and the contexts handed to the others.

Decrypting leaks: SEAL adds no noise on decryption, so exact CKKS results published to anyone
who also saw the ciphertexts can reveal the secret key (Li-Micciancio). Round or add noise to
what :meth:`KeyHolder.decrypt` returns before releasing it, never send decryptions back to the
compute node, and decrypt only sums (never one hospital's ciphertext). Each key decrypts at
most ``max_decryptions`` results.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from securecalc.engines.ckks import _tenseal
from securecalc.engines.ckks.layout import DEFAULT_PARAMS, CkksParams, Layout
from securecalc.engines.ckks.validate import CiphertextRejected, validate_ciphertexts
from securecalc.errors import CryptoError


class KeyHolder:
    """Owns a fresh CKKS secret key; makes public contexts and decrypts released sums."""

    def __init__(self, params: CkksParams = DEFAULT_PARAMS, *, max_decryptions: int = 16) -> None:
        if max_decryptions < 0:
            raise ValueError("max_decryptions must not be negative")
        self._params = params
        self._ctx = _tenseal.new_context(params)
        self._parms_id = _tenseal.data_parms_id(self._ctx)
        self._max_decryptions = max_decryptions
        self._decryptions = 0
        self._lock = threading.Lock()
        self._public: bytes | None = None
        self._params_only: bytes | None = None

    @classmethod
    def create(cls, params: CkksParams = DEFAULT_PARAMS, *, max_decryptions: int = 16) -> KeyHolder:
        """A key holder with a new secret key (never reused across calls)."""
        return cls(params, max_decryptions=max_decryptions)

    @property
    def params(self) -> CkksParams:
        return self._params

    @property
    def decryptions_left(self) -> int:
        return self._max_decryptions - self._decryptions

    def public_context_bytes(self) -> bytes:
        """Context for hospitals: parameters and public key; no secret, Galois or relin keys."""
        if self._public is None:
            self._public = _tenseal.serialize_context(self._ctx, public_key=True)
        return self._public

    def params_context_bytes(self) -> bytes:
        """Context for the compute node: parameters only (~100 bytes), enough to add."""
        if self._params_only is None:
            self._params_only = _tenseal.serialize_context(self._ctx, public_key=False)
        return self._params_only

    def decrypt(self, ciphertexts: Sequence[bytes], layout: Layout) -> list[float]:
        """Validate, then decrypt a packed sum into exactly ``layout.n_values`` floats.

        Raises :class:`CiphertextRejected` for malformed input (which does not use up a
        decryption) and :class:`CryptoError` once this key's decryption budget is spent.
        """
        if layout.params != self._params:
            raise CryptoError("layout parameters differ from this key's parameters")
        validate_ciphertexts(ciphertexts, layout, parms_id=self._parms_id)
        vectors = [_tenseal.load_vector(self._ctx, data) for data in ciphertexts]
        with self._lock:
            if self._decryptions >= self._max_decryptions:
                raise CryptoError(f"this key has decrypted {self._decryptions} results; no more")
            self._decryptions += 1
        values: list[float] = []
        for vector, size in zip(vectors, layout.sizes(), strict=True):
            plain = vector.decrypt()
            if len(plain) != size:
                raise CiphertextRejected(f"decrypted {len(plain)} values, expected {size}")
            values.extend(plain)
        return values
