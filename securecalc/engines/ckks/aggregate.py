"""Compute-node side: add hospitals' ciphertexts, holding no key that decrypts.

Every contribution is validated before TenSEAL parses it and loaded completely before anything
is added, so a rejected contribution leaves the running sum untouched. The sum is released
once: after :meth:`Accumulator.result` no more contributions are taken (two different sums
would let the key holder subtract one hospital's values out).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from securecalc.engines.ckks import _tenseal
from securecalc.engines.ckks.layout import Layout
from securecalc.engines.ckks.validate import validate_ciphertexts
from securecalc.errors import ProtocolError

if TYPE_CHECKING:
    import tenseal as ts


class Accumulator:
    """Running encrypted sum of packed vectors laid out as ``layout``."""

    def __init__(self, params_context: bytes, layout: Layout, *, min_contributions: int = 1):
        self._ctx = _tenseal.load_context(
            params_context, layout.params, allow_secret_key=False, require_public_key=False
        )
        self._layout = layout
        self._parms_id = _tenseal.data_parms_id(self._ctx)
        self._min_contributions = min_contributions
        self._sum: list[ts.CKKSVector] | None = None
        self._count = 0
        self._result: list[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def count(self) -> int:
        """Contributions added so far."""
        return self._count

    def add(self, ciphertexts: Sequence[bytes]) -> None:
        """Validate and add one contribution (``layout.n_ciphertexts`` ciphertexts).

        Raises :class:`CiphertextRejected` (a :class:`ProtocolError`) for malformed input and
        :class:`ProtocolError` once the sum has been released.
        """
        validate_ciphertexts(ciphertexts, self._layout, parms_id=self._parms_id)
        vectors = [_tenseal.load_vector(self._ctx, data) for data in ciphertexts]
        with self._lock:
            if self._result is not None:
                raise ProtocolError("the sum was already released; no more contributions")
            if self._sum is None:
                self._sum = vectors
            else:
                for i, vector in enumerate(vectors):
                    self._sum[i] += vector
            self._count += 1

    def result(self) -> list[bytes]:
        """The serialized sum (canonical form); closes the accumulator to new contributions."""
        with self._lock:
            if self._result is None:
                if self._sum is None or self._count < self._min_contributions:
                    raise ProtocolError(
                        f"{self._count} contributions; at least "
                        f"{max(1, self._min_contributions)} needed to release a sum"
                    )
                self._result = [_tenseal.serialize(vector) for vector in self._sum]
                self._sum = None
            return list(self._result)
