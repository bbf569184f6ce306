"""The only module that imports TenSEAL: contexts, canonical serialization, loading.

TenSEAL (0.3.18) writes every SEAL blob zstd-compressed, SEAL's default, and offers no
switch. A compressed blob hides the fields a validator must see (degree, scale, moduli), and
Python 3.11 has no zstd. So our own output is re-framed UNCOMPRESSED (compression mode
none, which SEAL always reads): :func:`canonical` decompresses TenSEAL's trusted, freshly
made output with the zstd that SEAL itself is linked with (exported by TenSEAL's extension
module; the system ``libzstd`` as a fallback). The wire then carries ~393.3 KB per ciphertext
instead of ~331.1 KB (+19%), and loading them is ~4x faster than decompressing (0.13 ms vs
0.55 ms). Peers' bytes are never decompressed here: validate.py rejects compressed ones.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import struct
import zlib
from collections.abc import Sequence

import tenseal as ts

from securecalc.engines.ckks import _wire as w
from securecalc.engines.ckks.layout import CkksParams
from securecalc.engines.ckks.validate import CiphertextRejected, validate_context
from securecalc.errors import CryptoError

_MAX_RAW_BLOB = 64 << 20
_ZSTD_CONTENTSIZE_ERRORS = (2**64 - 1, 2**64 - 2)


@functools.cache
def _zstd() -> ctypes.CDLL:
    for path in (getattr(ts._ts_cpp, "__file__", None), ctypes.util.find_library("zstd")):
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            decompress, is_error = lib.ZSTD_decompress, lib.ZSTD_isError
            content_size = lib.ZSTD_getFrameContentSize
        except (OSError, AttributeError):
            continue
        decompress.restype = ctypes.c_size_t
        decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        is_error.restype, is_error.argtypes = ctypes.c_uint, [ctypes.c_size_t]
        content_size.restype = ctypes.c_ulonglong
        content_size.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return lib
    raise CryptoError("no zstd decoder found to re-frame TenSEAL output")


def _zstd_decompress(src: bytes) -> bytes:
    lib = _zstd()
    size = lib.ZSTD_getFrameContentSize(src, len(src))
    if size in _ZSTD_CONTENTSIZE_ERRORS or size > _MAX_RAW_BLOB:
        raise CryptoError("unexpected TenSEAL output (zstd frame)")
    out = ctypes.create_string_buffer(size)
    written = lib.ZSTD_decompress(out, size, src, len(src))
    if lib.ZSTD_isError(written) or written != size:
        raise CryptoError("unexpected TenSEAL output (zstd data)")
    return out.raw


def _uncompressed_blob(blob: memoryview) -> bytes:
    if len(blob) < w.SEAL_HEADER.size:
        raise CryptoError("unexpected TenSEAL output (SEAL blob)")
    magic, hsize, major, minor, compr, _, size = w.SEAL_HEADER.unpack_from(blob)
    if magic != w.SEAL_MAGIC or hsize != w.SEAL_HEADER.size or size != len(blob):
        raise CryptoError("unexpected TenSEAL output (SEAL header)")
    body = bytes(blob[hsize:])
    if compr == w.COMPR_ZSTD:
        body = _zstd_decompress(body)
    elif compr == w.COMPR_ZLIB:
        body = zlib.decompress(body)
    elif compr != w.COMPR_NONE:
        raise CryptoError("unexpected TenSEAL output (compression mode)")
    return w.seal_header(w.COMPR_NONE, hsize + len(body), (major, minor)) + body


def canonical(serialized: bytes) -> bytes:
    """Re-frame TenSEAL's own ``CKKSVector.serialize()`` output in the canonical form."""
    sizes: list[int] = []
    blobs: list[bytes] = []
    scale = 0.0
    try:
        for field in w.iter_fields(memoryview(serialized)):
            value, kind = field.value, (field.number, field.wire_type)
            if kind == (1, w.LEN) and isinstance(value, memoryview):
                sizes += w.packed_varints(value)
            elif kind == (2, w.LEN) and isinstance(value, memoryview):
                blobs.append(_uncompressed_blob(value))
            elif kind == (3, w.I64) and isinstance(value, memoryview):
                (scale,) = struct.unpack("<d", value)
            else:
                raise CryptoError("unexpected TenSEAL output (field)")
    except w.WireError as exc:
        raise CryptoError("unexpected TenSEAL output") from exc
    return w.encode_ckks_vector(sizes, blobs, scale)


def new_context(params: CkksParams) -> ts.Context:
    """A fresh private context: new secret key, public key (and TenSEAL's relin keys)."""
    return ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )


def context_params(ctx: ts.Context) -> tuple[int, tuple[int, ...]]:
    """``(poly_modulus_degree, coeff_mod_bit_sizes)`` of a loaded CKKS context.

    Bit sizes are read off the modulus chain: each level drops one prime, so the drop in
    total bit count is that prime's size (exact for SEAL's primes, which sit just below 2**b).
    """
    key_level = ctx.seal_context().data.key_context_data()
    parms = key_level.parms()
    if parms.scheme() != ts.SCHEME_TYPE.CKKS.value:
        raise CryptoError("context is not a CKKS context")
    totals, level = [], key_level
    while level is not None:
        totals.append(level.total_coeff_modulus_bit_count())
        level = level.next_context_data()
    bits = [totals[-1]] + [totals[i] - totals[i + 1] for i in range(len(totals) - 2, -1, -1)]
    return parms.poly_modulus_degree(), tuple(bits)


def data_parms_id(ctx: ts.Context) -> bytes:
    """SEAL's 32-byte parameter hash of fresh ciphertexts, as serialized in them."""
    return struct.pack("<4Q", *ctx.seal_context().data.first_parms_id())


def load_context(
    data: bytes, params: CkksParams, *, allow_secret_key: bool, require_public_key: bool
) -> ts.Context:
    """Validate, load and check a serialized context against the study's parameters."""
    validate_context(data, allow_secret_key=allow_secret_key, require_public_key=require_public_key)
    try:
        ctx = ts.context_from(bytes(data))
    except Exception:  # TenSEAL raises ValueError, RuntimeError, ... on bad input
        raise CryptoError("context rejected") from None
    if ctx.has_secret_key() and not allow_secret_key:
        raise CryptoError("context holds a secret key; refusing it")
    if require_public_key and not ctx.has_public_key():
        raise CryptoError("context holds no public key")
    degree, bits = context_params(ctx)
    if (degree, bits) != (params.poly_modulus_degree, params.coeff_mod_bit_sizes):
        raise CryptoError(
            f"context parameters (N={degree}, moduli {list(bits)}) differ from the study's "
            f"(N={params.poly_modulus_degree}, moduli {list(params.coeff_mod_bit_sizes)})"
        )
    return ctx


def serialize_context(ctx: ts.Context, *, public_key: bool) -> bytes:
    """Serialize without secret, Galois or relinearization keys."""
    data: bytes = ctx.serialize(
        save_public_key=public_key,
        save_secret_key=False,
        save_galois_keys=False,
        save_relin_keys=False,
    )
    return data


def encrypt(ctx: ts.Context, values: Sequence[float], scale: float) -> bytes:
    """Encrypt at most ``slots`` values into one canonical serialized vector."""
    return canonical(ts.ckks_vector(ctx, list(values), scale).serialize())


def load_vector(ctx: ts.Context, data: bytes) -> ts.CKKSVector:
    """Deserialize a vector that passed validation; SEAL's own load checks still apply."""
    try:
        return ts.ckks_vector_from(ctx, bytes(data))
    except Exception as exc:  # e.g. a coefficient not reduced modulo its prime
        raise CiphertextRejected(f"TenSEAL refused it: {exc}") from None


def serialize(vector: ts.CKKSVector) -> bytes:
    """Canonical serialization of a vector (one ciphertext)."""
    return canonical(vector.serialize())
