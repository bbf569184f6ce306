"""Just enough protobuf wire format and SEAL framing to read and write TenSEAL messages.

Pure Python and strict: minimal varints only, no groups, every length bounded by its
buffer. Nothing here imports TenSEAL or generated code, so it can look at bytes from a peer
before TenSEAL does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

VARINT, I64, LEN, I32 = 0, 1, 2, 5

SEAL_MAGIC = 0xA15E
SEAL_VERSION = (4, 3)  # what the SEAL inside tenseal 0.3.18 writes
COMPR_NONE, COMPR_ZLIB, COMPR_ZSTD = 0, 1, 2

SEAL_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compr, reserved, size
# SEAL Ciphertext members: parms_id, is_ntt_form, size, poly degree, coeff modulus count,
# scale, correction factor; then its coefficients as a DynArray (own header + count + data).
CIPHERTEXT_MEMBERS = struct.Struct("<32sBQQQdQ")
DYNARRAY_COUNT = struct.Struct("<Q")


class WireError(Exception):
    """Bytes that do not follow the expected wire format (internal; callers map it)."""


@dataclass(frozen=True)
class Field:
    """One protobuf field: an int for VARINT, raw bytes (a view) for the other wire types."""

    number: int
    wire_type: int
    value: int | memoryview


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode one minimal varint at ``pos``; return ``(value, next_pos)``."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and shift:
                raise WireError("non-minimal varint")
            if result >> 64:
                raise WireError("varint overflow")
            return result, pos
    raise WireError("varint too long")


def iter_fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Yield the fields of one message lazily (so a caller can stop after a few)."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0 or number >= 1 << 29:
            raise WireError("bad field number")
        value: int | memoryview
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        else:
            if wire_type == LEN:
                length, pos = read_varint(buf, pos, end)
            elif wire_type in (I64, I32):
                length = 8 if wire_type == I64 else 4
            else:
                raise WireError("unsupported wire type")
            if length > end - pos:
                raise WireError("field overruns message")
            value, pos = buf[pos : pos + length], pos + length
        yield Field(number, wire_type, value)


def packed_varints(payload: memoryview) -> list[int]:
    """Decode a packed repeated varint field."""
    values, pos = [], 0
    while pos < len(payload):
        value, pos = read_varint(payload, pos, len(payload))
        values.append(value)
    return values


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def encode_len(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload


def encode_double(number: int, value: float) -> bytes:
    return encode_varint(number << 3 | I64) + struct.pack("<d", value)


def encode_ckks_vector(sizes: list[int], ciphertexts: list[bytes], scale: float) -> bytes:
    """Serialize a TenSEAL ``CKKSVectorProto`` the way TenSEAL does (fields in order)."""
    packed = b"".join(encode_varint(s) for s in sizes)
    parts = [encode_len(1, packed)] if sizes else []
    parts += [encode_len(2, ct) for ct in ciphertexts]
    if scale != 0.0:
        parts.append(encode_double(3, scale))
    return b"".join(parts)


def seal_header(compr_mode: int, size: int, version: tuple[int, int] = SEAL_VERSION) -> bytes:
    return SEAL_HEADER.pack(SEAL_MAGIC, SEAL_HEADER.size, *version, compr_mode, 0, size)


def seal_ciphertext_length(poly_modulus_degree: int, n_moduli: int, size: int = 2) -> int:
    """Bytes of an uncompressed SEAL ciphertext blob, headers included."""
    data = 8 * size * n_moduli * poly_modulus_degree
    return SEAL_HEADER.size + CIPHERTEXT_MEMBERS.size + SEAL_HEADER.size + 8 + data


def ckks_vector_length(n_values: int, seal_blob_length: int, scale: float) -> int:
    """Bytes of a one-ciphertext ``CKKSVectorProto`` as :func:`encode_ckks_vector` writes it."""
    sizes = 2 + len(encode_varint(n_values))
    blob = 1 + len(encode_varint(seal_blob_length)) + seal_blob_length
    return sizes + blob + (9 if scale != 0.0 else 0)
