"""Hospital side: encrypt a packed vector of local aggregates under the study's public context."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from securecalc.engines.ckks import _tenseal
from securecalc.engines.ckks.layout import Layout
from securecalc.errors import DataError


def encrypt_packed(
    public_context: bytes, values: Sequence[float] | np.ndarray, layout: Layout
) -> list[bytes]:
    """Encrypt ``values`` into ``layout.n_ciphertexts`` canonical serialized vectors.

    Refuses (:class:`CryptoError`) a context holding a secret key, one without a public key,
    or one whose parameters differ from ``layout.params``. Raises :class:`DataError` for
    non-finite values or values beyond ``params.max_abs_value``.
    """
    array = _checked(values, layout)
    ctx = _tenseal.load_context(
        public_context, layout.params, allow_secret_key=False, require_public_key=True
    )
    scale = layout.params.scale
    return [_tenseal.encrypt(ctx, array[part].tolist(), scale) for part in layout.slices()]


def _checked(values: Sequence[float] | np.ndarray, layout: Layout) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"values to encrypt must be numbers: {exc}") from None
    if array.shape != (layout.n_values,):
        raise ValueError(f"expected {layout.n_values} values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DataError("values to encrypt must be finite (found NaN or infinity)")
    if np.abs(array).max() > layout.params.max_abs_value:
        raise DataError(f"values to encrypt must lie within ±{layout.params.max_abs_value:.3g}")
    return array
