"""Check ciphertexts and contexts from other nodes BEFORE TenSEAL parses them (no TenSEAL here).

TenSEAL's deserializer trusts the metadata it reads: a vector without ciphertexts crashed the
process when summed, one declaring more values than it holds made ``decrypt()`` return heap
memory, and NaN, zero or negative scales are accepted. It also accepts unknown protobuf fields,
bytes after the SEAL blob, and zlib as well as zstd compression. So we accept exactly one
shape, the canonical one our own code produces (see ``_tenseal.canonical``):

``CKKSVectorProto{sizes: [n], ciphertexts: [one SEAL blob], scale: 2**scale_bits}`` where the
SEAL blob is UNCOMPRESSED (compression mode none), so every field SEAL will read can be
checked here: header, parms_id, NTT form, size 2, degree, number of moduli, scale, correction
factor, the coefficient array's own header and count, and every coefficient's bit length.
The total length is fixed by ``(n, params)`` and checked first, so no input costs more than
one pass. SEAL itself then checks each coefficient against its exact prime on load.

Rejections raise :class:`CiphertextRejected` whose text is always "ciphertext rejected"; the
detail is in ``.reason`` and in a debug log line, never in ``str()``.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import cast

import numpy as np

from securecalc.engines.ckks import _wire as w
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.errors import CryptoError, ProtocolError

log = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 4 << 20  # a public context is ~465 KB; with relinearization keys ~1.9 MB
_MAX_PARAMS_BLOB = 4096
# TenSEALPublicProto: public key, auto flags, scale, relinearization keys, Galois keys
_PUBLIC_FIELDS = {1: w.LEN, 2: w.VARINT, 3: w.I64, 4: w.LEN, 5: w.LEN}


class CiphertextRejected(ProtocolError):
    """A peer's ciphertext failed validation. ``str()`` is opaque; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__("ciphertext rejected")
        self.reason = reason


def _reject(reason: str) -> CiphertextRejected:
    log.debug("ciphertext rejected: %s", reason)
    return CiphertextRejected(reason)


def seal_blob_length(params: CkksParams) -> int:
    """Bytes of one canonical (uncompressed, fresh-size) SEAL ciphertext under ``params``."""
    return w.seal_ciphertext_length(params.poly_modulus_degree, len(params.data_bit_sizes))


def canonical_length(n_values: int, params: CkksParams) -> int:
    """Exact bytes of a canonical serialized vector of ``n_values`` values."""
    return w.ckks_vector_length(n_values, seal_blob_length(params), params.scale)


def validate_ciphertext(
    data: bytes, *, expected_size: int, params: CkksParams, parms_id: bytes | None = None
) -> None:
    """Accept ``data`` only if it is one canonical CKKS vector of ``expected_size`` values.

    ``parms_id`` (32 bytes, see ``_tenseal.data_parms_id``) pins the SEAL parameter hash when
    the caller holds a context; without it SEAL checks the hash on load.
    Raises :class:`CiphertextRejected`.
    """
    if not 1 <= expected_size <= params.slots:
        raise ValueError(f"expected_size must be within 1..{params.slots}")
    if not isinstance(data, bytes | bytearray):
        raise _reject("not bytes")
    if len(data) != canonical_length(expected_size, params):
        raise _reject(f"length {len(data)} is not the canonical length")
    buf = memoryview(data)
    try:
        fields = list(islice(w.iter_fields(buf), 4))
        shape = [(f.number, f.wire_type) for f in fields]
        if shape != [(1, w.LEN), (2, w.LEN), (3, w.I64)]:
            raise _reject(f"message shape {shape}")
        sizes_field, blob_field, scale_field = (cast(memoryview, f.value) for f in fields)
        sizes = w.packed_varints(sizes_field)
    except w.WireError as exc:
        raise _reject(str(exc)) from None
    if sizes != [expected_size]:
        raise _reject(f"declared sizes {sizes[:4]}")
    (scale,) = struct.unpack("<d", scale_field)
    _check_scale(scale, params, "vector")
    _check_seal_blob(blob_field, params, parms_id)


def validate_ciphertexts(
    ciphertexts: Sequence[bytes], layout: Layout, *, parms_id: bytes | None = None
) -> None:
    """Validate a whole packed vector: one ciphertext per entry of ``layout.sizes()``."""
    if not isinstance(ciphertexts, list | tuple) or len(ciphertexts) != layout.n_ciphertexts:
        raise _reject("wrong number of ciphertexts")
    for data, size in zip(ciphertexts, layout.sizes(), strict=True):
        validate_ciphertext(data, expected_size=size, params=layout.params, parms_id=parms_id)


def _check_scale(scale: float, params: CkksParams, where: str) -> None:
    if not math.isfinite(scale) or scale != params.scale:
        raise _reject(f"{where} scale {scale!r}")


def _check_header(buf: memoryview, offset: int, size: int, where: str) -> None:
    magic, hsize, major, minor, compr, reserved, declared = w.SEAL_HEADER.unpack_from(buf, offset)
    if magic != w.SEAL_MAGIC or hsize != w.SEAL_HEADER.size or reserved:
        raise _reject(f"{where}: bad SEAL header")
    if (major, minor) != w.SEAL_VERSION:
        raise _reject(f"{where}: SEAL version {major}.{minor}")
    if compr != w.COMPR_NONE:
        raise _reject(f"{where}: compression mode {compr}")
    if declared != size:
        raise _reject(f"{where}: declared size {declared} != {size}")


def _check_seal_blob(blob: memoryview, params: CkksParams, parms_id: bytes | None) -> None:
    degree, bits = params.poly_modulus_degree, params.data_bit_sizes
    n_moduli = len(bits)
    if len(blob) != seal_blob_length(params):
        raise _reject("SEAL blob length")
    _check_header(blob, 0, len(blob), "ciphertext")
    members = w.CIPHERTEXT_MEMBERS.unpack_from(blob, w.SEAL_HEADER.size)
    pid, ntt, size, poly_degree, coeff_count, scale, correction = members
    if parms_id is not None and pid != parms_id:
        raise _reject("parms_id")
    if ntt != 1 or size != 2 or correction != 1:
        raise _reject(f"ntt={ntt} size={size} correction={correction}")
    if poly_degree != degree or coeff_count != n_moduli:
        raise _reject(f"degree {poly_degree}, {coeff_count} moduli")
    _check_scale(scale, params, "ciphertext")
    array_at = w.SEAL_HEADER.size + w.CIPHERTEXT_MEMBERS.size
    count = 2 * n_moduli * degree
    _check_header(blob, array_at, len(blob) - array_at, "coefficients")
    (declared_count,) = w.DYNARRAY_COUNT.unpack_from(blob, array_at + w.SEAL_HEADER.size)
    if declared_count != count:
        raise _reject(f"coefficient count {declared_count}")
    data_at = array_at + w.SEAL_HEADER.size + w.DYNARRAY_COUNT.size
    coeffs = np.frombuffer(blob, dtype="<u8", count=count, offset=data_at)
    largest = coeffs.reshape(2, n_moduli, degree).max(axis=(0, 2))
    if any(int(m) >> b for m, b in zip(largest.tolist(), bits, strict=True)):
        raise _reject("coefficient exceeds its modulus size")


@dataclass(frozen=True)
class ContextInfo:
    """What a serialized TenSEAL context holds, read from its wire format."""

    size: int
    has_public_key: bool
    has_secret_key: bool
    has_relin_keys: bool
    has_galois_keys: bool


def validate_context(
    data: bytes,
    *,
    allow_secret_key: bool = False,
    require_public_key: bool = False,
    max_bytes: int = MAX_CONTEXT_BYTES,
) -> ContextInfo:
    """Check a serialized TenSEAL context before loading it; raise :class:`CryptoError`.

    Accepts only the fields TenSEAL writes, each at most once, public-key encryption, and no
    secret key unless ``allow_secret_key``. The encryption parameters themselves are
    compressed by SEAL; they are compared with the study's after loading (``_tenseal``).
    """
    if not isinstance(data, bytes | bytearray) or not data:
        raise CryptoError("context rejected")
    if len(data) > max_bytes:
        raise CryptoError(f"context of {len(data)} bytes exceeds the {max_bytes} byte limit")
    try:
        top = _unique_fields(memoryview(data), {1: w.LEN, 2: w.LEN, 3: w.LEN, 4: w.VARINT})
        params_blob = _len_field(top, 1)
        if params_blob is None or len(params_blob) > _MAX_PARAMS_BLOB:
            raise w.WireError("encryption parameters missing or oversized")
        _check_any_seal_blob(params_blob)
        if top.get(4, 0) != 0:
            raise w.WireError("not public-key encryption")
        public: dict[int, int | memoryview] = {}
        if (public_msg := _len_field(top, 2)) is not None:
            public = _unique_fields(public_msg, _PUBLIC_FIELDS)
            for key in (1, 4, 5):
                if (key_blob := _len_field(public, key)) is not None:
                    _check_any_seal_blob(key_blob)
        if (private_msg := _len_field(top, 3)) is not None:
            _unique_fields(private_msg, {1: w.LEN, 2: w.VARINT, 3: w.VARINT})
    except w.WireError as exc:
        log.debug("context rejected: %s", exc)
        raise CryptoError("context rejected") from None
    info = ContextInfo(
        size=len(data),
        has_public_key=1 in public,
        has_secret_key=3 in top,
        has_relin_keys=4 in public,
        has_galois_keys=5 in public,
    )
    if info.has_secret_key and not allow_secret_key:
        raise CryptoError("context holds a secret key; refusing it")
    if require_public_key and not info.has_public_key:
        raise CryptoError("context holds no public key")
    return info


def _unique_fields(buf: memoryview, wanted: dict[int, int]) -> dict[int, int | memoryview]:
    found: dict[int, int | memoryview] = {}
    for field in w.iter_fields(buf):
        if wanted.get(field.number) != field.wire_type or field.number in found:
            raise w.WireError(f"unexpected field {field.number}/{field.wire_type}")
        found[field.number] = field.value
    return found


def _len_field(found: dict[int, int | memoryview], number: int) -> memoryview | None:
    value = found.get(number)
    return value if isinstance(value, memoryview) else None


def _check_any_seal_blob(blob: memoryview) -> None:
    """A SEAL blob of any compression mode whose header matches its length."""
    if len(blob) < w.SEAL_HEADER.size:
        raise w.WireError("short SEAL blob")
    magic, hsize, major, minor, compr, reserved, size = w.SEAL_HEADER.unpack_from(blob)
    if magic != w.SEAL_MAGIC or hsize != w.SEAL_HEADER.size or reserved or size != len(blob):
        raise w.WireError("bad SEAL header")
    if (major, minor) != w.SEAL_VERSION or compr not in (w.COMPR_NONE, w.COMPR_ZSTD):
        raise w.WireError("unsupported SEAL version or compression")
