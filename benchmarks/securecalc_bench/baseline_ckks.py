"""CKKS in isolation: the compute node's add, context and ciphertext sizes, packing, and the
naive TenSEAL baseline (one ciphertext per site-column value, no packing).

Everything runs in this process with the engine's own primitives (:class:`KeyHolder`,
:func:`encrypt_packed`, :class:`Accumulator`), so the figures are those of the engine minus
the network. The naive baseline is measured on a few values and extrapolated linearly: its
cost is per ciphertext, and it needs one per value.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"median_ms": 1e3 * statistics.median(ordered),
            "p90_ms": 1e3 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "min_ms": 1e3 * ordered[0], "samples": len(ordered)}


def micro(adds: int, seed: int = 0) -> dict[str, Any]:
    """Key generation, context sizes, one full ciphertext, and ``adds`` timed
    :meth:`Accumulator.add` calls (validation, loading and the addition)."""
    from securecalc.engines.ckks import Accumulator, CkksParams, KeyHolder, Layout, encrypt_packed
    from securecalc.engines.ckks import _tenseal as tse
    from securecalc.engines.ckks.validate import validate_ciphertexts

    params = CkksParams()
    started = time.perf_counter()
    holder = KeyHolder.create(params, max_decryptions=2)
    public = holder.public_context_bytes()
    params_ctx = holder.params_context_bytes()
    keygen = time.perf_counter() - started
    layout = Layout(params.slots, params)
    values = np.random.default_rng(seed).uniform(-1, 1, params.slots)
    started = time.perf_counter()
    ciphertexts = encrypt_packed(public, values, layout)
    encrypt = time.perf_counter() - started
    accumulator = Accumulator(params_ctx, layout)
    parms_id = tse.data_parms_id(tse.load_context(params_ctx, params, allow_secret_key=False,
                                                  require_public_key=False))
    add_times, validate_times = [], []
    for _ in range(adds):
        t0 = time.perf_counter()
        validate_ciphertexts(ciphertexts, layout, parms_id=parms_id)
        validate_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        accumulator.add(ciphertexts)
        add_times.append(time.perf_counter() - t0)
    total = accumulator.result()
    started = time.perf_counter()
    decrypted = holder.decrypt(total, layout)
    decrypt = time.perf_counter() - started
    error = float(np.max(np.abs(np.asarray(decrypted) - adds * values)))
    return {"slots": params.slots, "poly_modulus_degree": params.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
            "scale_bits": params.scale_bits, "keygen_seconds": keygen,
            "public_context_bytes": len(public), "params_context_bytes": len(params_ctx),
            "ciphertext_bytes": len(ciphertexts[0]),
            "encrypt_full_ms": 1e3 * encrypt, "decrypt_full_ms": 1e3 * decrypt,
            "add": _ms(add_times), "validate": _ms(validate_times),
            "sum_abs_error": error}


def naive(values: int, seed: int = 0) -> dict[str, Any]:
    """Per-value costs of the naive layout: encrypt one value, add it (validated) at the
    compute node, and its wire size."""
    from securecalc.engines.ckks import Accumulator, CkksParams, KeyHolder, Layout
    from securecalc.engines.ckks import _tenseal as tse

    params = CkksParams()
    holder = KeyHolder.create(params, max_decryptions=1)
    ctx = tse.load_context(holder.public_context_bytes(), params, allow_secret_key=False,
                           require_public_key=True)
    layout = Layout(1, params)
    data = np.random.default_rng(seed).uniform(0, 1, values)
    enc_times, ciphertexts = [], []
    for v in data:
        t0 = time.perf_counter()
        ciphertexts.append(tse.encrypt(ctx, [float(v)], params.scale))
        enc_times.append(time.perf_counter() - t0)
    accumulator = Accumulator(holder.params_context_bytes(), layout)
    add_times = []
    for ct in ciphertexts:
        t0 = time.perf_counter()
        accumulator.add([ct])
        add_times.append(time.perf_counter() - t0)
    total = holder.decrypt(accumulator.result(), layout)[0]
    return {"values": values, "encrypt": _ms(enc_times), "add": _ms(add_times),
            "ciphertext_bytes": len(ciphertexts[0]),
            "relative_error": abs(total - float(data.sum())) / float(data.sum())}


def naive_estimate(per_value: dict[str, Any], *, rows: int, columns: int,
                   sites: int) -> dict[str, Any]:
    """Extrapolated naive cost for ``rows`` x ``columns`` values at each of ``sites`` sites.

    Sites encrypt in parallel (one machine each); the compute node adds every ciphertext.
    Only encryption, transfer size and addition are counted (a lower bound: variance or
    regression would also need ciphertext multiplications and relinearisation keys).
    """
    count = rows * columns
    site_seconds = count * per_value["encrypt"]["median_ms"] / 1e3
    compute_seconds = sites * count * per_value["add"]["median_ms"] / 1e3
    return {"rows": rows, "columns": columns, "sites": sites, "extrapolated": True,
            "ciphertexts_per_site": count,
            "bytes_per_site": count * per_value["ciphertext_bytes"],
            "site_seconds": site_seconds, "compute_seconds": compute_seconds,
            "seconds": site_seconds + compute_seconds}


def layouts(plans_by_analysis: dict[str, int], slots: int) -> dict[str, dict[str, Any]]:
    """Packing of each analysis (values per site -> ciphertexts, slot utilisation)."""
    out = {}
    for name, n_values in plans_by_analysis.items():
        n_ct = max(1, -(-n_values // slots))
        out[name] = {"n_values": n_values, "ciphertexts": n_ct,
                     "utilization": n_values / (n_ct * slots),
                     "full_ciphertexts_used": n_values / slots}
    return out


__all__ = ["layouts", "micro", "naive", "naive_estimate"]
