"""The ciphertext and context validators, against genuine and crafted TenSEAL messages.

Crafted messages are built with our own wire helpers; nothing crafted here is handed to
TenSEAL unless the validator accepted it (some of them crash TenSEAL).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import tenseal as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecalc.engines.ckks import (
    Accumulator,
    CiphertextRejected,
    CkksParams,
    KeyHolder,
    Layout,
    encrypt_packed,
    validate_ciphertext,
    validate_context,
)
from securecalc.engines.ckks import _wire as w
from securecalc.errors import CryptoError, ProtocolError

PARAMS = CkksParams()
N = 3
VALUES = [1.5, -2.25, 1e6]

# Offsets inside the SEAL blob of a canonical ciphertext.
PARMS_ID, NTT, SIZE, DEGREE, N_MODULI, SCALE, CORRECTION = 16, 48, 49, 57, 65, 73, 81
INNER_HEADER, COUNT, DATA = 89, 105, 113


@pytest.fixture(scope="module")
def holder() -> KeyHolder:
    return KeyHolder.create(PARAMS, max_decryptions=10_000)


@pytest.fixture(scope="module")
def genuine(holder: KeyHolder) -> bytes:
    (ciphertext,) = encrypt_packed(holder.public_context_bytes(), VALUES, Layout(N, PARAMS))
    return ciphertext


def split(data: bytes) -> tuple[list[int], bytes, float]:
    """(sizes, SEAL blob, scale) of a canonical message."""
    fields = list(w.iter_fields(memoryview(data)))
    sizes = w.packed_varints(fields[0].value)  # type: ignore[arg-type]
    (scale,) = struct.unpack("<d", fields[2].value)  # type: ignore[arg-type]
    return sizes, bytes(fields[1].value), scale  # type: ignore[arg-type]


def with_blob(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    """The message with one value in its SEAL blob overwritten."""
    sizes, blob, scale = split(data)
    patched = bytearray(blob)
    struct.pack_into(fmt, patched, offset, value)
    return w.encode_ckks_vector(sizes, [bytes(patched)], scale)


def rejected(data: object, expected_size: int = N, **kwargs: object) -> CiphertextRejected:
    with pytest.raises(CiphertextRejected) as info:
        validate_ciphertext(data, expected_size=expected_size, params=PARAMS, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == "ciphertext rejected"  # opaque to the peer
    assert info.value.reason
    return info.value


# --- genuine ciphertexts -------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_accepts_genuine_ciphertexts(holder: KeyHolder, genuine: bytes) -> None:
    validate_ciphertext(genuine, expected_size=N, params=PARAMS)
    for n in (1, PARAMS.slots):
        (ciphertext,) = encrypt_packed(holder.public_context_bytes(), [0.5] * n, Layout(n))
        validate_ciphertext(ciphertext, expected_size=n, params=PARAMS)


@pytest.mark.timeout(30)
def test_accepts_a_released_sum(holder: KeyHolder, genuine: bytes) -> None:
    accumulator = Accumulator(holder.params_context_bytes(), Layout(N))
    accumulator.add([genuine])
    accumulator.add([genuine])
    (total,) = accumulator.result()
    validate_ciphertext(total, expected_size=N, params=PARAMS)
    assert holder.decrypt([total], Layout(N)) == pytest.approx([2 * v for v in VALUES], abs=1e-5)


@pytest.mark.timeout(30)
def test_canonical_blob_is_uncompressed_seal_with_expected_members(genuine: bytes) -> None:
    sizes, blob, scale = split(genuine)
    assert sizes == [N] and scale == PARAMS.scale
    magic, hsize, major, minor, compr, _, size = w.SEAL_HEADER.unpack_from(blob)
    assert (magic, hsize, (major, minor), compr, size) == (0xA15E, 16, (4, 3), 0, len(blob))
    _, ntt, ct_size, degree, n_moduli, ct_scale, correction = w.CIPHERTEXT_MEMBERS.unpack_from(
        blob, 16
    )
    expected = (1, 2, 8192, 3, PARAMS.scale, 1)
    assert (ntt, ct_size, degree, n_moduli, ct_scale, correction) == expected


# --- malformed framing -------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cut", [1, 9, 1000, 200_000])
def test_rejects_truncated(genuine: bytes, cut: int) -> None:
    rejected(genuine[:-cut])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("extra", [b"\x00", b"garbage", b"\x19" + struct.pack("<d", 2.0**40)])
def test_rejects_appended_bytes(genuine: bytes, extra: bytes) -> None:
    rejected(genuine + extra)


@pytest.mark.timeout(30)
def test_rejects_empty_and_non_bytes(genuine: bytes) -> None:
    rejected(b"")
    rejected(genuine.decode("latin-1"))
    rejected(list(genuine[:10]))


@pytest.mark.timeout(30)
def test_rejects_random_bytes(genuine: bytes) -> None:
    rng = np.random.default_rng(3)
    rejected(rng.bytes(len(genuine)))
    for length in (5, 100, 4096):
        rejected(rng.bytes(length))


@pytest.mark.timeout(30)
def test_rejects_a_message_with_no_ciphertexts(genuine: bytes) -> None:
    rejected(w.encode_ckks_vector([N], [], PARAMS.scale))


@pytest.mark.timeout(30)
def test_rejects_a_message_with_two_ciphertexts(genuine: bytes) -> None:
    _, blob, _ = split(genuine)
    rejected(w.encode_ckks_vector([N], [blob, blob], PARAMS.scale))
    rejected(w.encode_ckks_vector([N, N], [blob, blob], PARAMS.scale), expected_size=2 * N)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("declared", [[N + 1], [PARAMS.slots], [100_000], [2**32 - 1], [N, N], []])
def test_rejects_declared_sizes_other_than_expected(genuine: bytes, declared: list[int]) -> None:
    _, blob, scale = split(genuine)
    rejected(w.encode_ckks_vector(declared, [blob], scale))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("expected", [N - 1, N + 1, PARAMS.slots])
def test_rejects_wrong_expected_size(genuine: bytes, expected: int) -> None:
    rejected(genuine, expected_size=expected)


@pytest.mark.timeout(30)
def test_expected_size_beyond_the_slots_is_a_caller_error(genuine: bytes) -> None:
    with pytest.raises(ValueError):
        validate_ciphertext(genuine, expected_size=PARAMS.slots + 1, params=PARAMS)
    with pytest.raises(ValueError):
        validate_ciphertext(genuine, expected_size=0, params=PARAMS)


@pytest.mark.timeout(30)
def test_rejects_reordered_duplicated_or_unknown_fields(genuine: bytes) -> None:
    sizes, blob, scale = split(genuine)
    sizes_field = w.encode_len(1, b"".join(w.encode_varint(s) for s in sizes))
    blob_field, scale_field = w.encode_len(2, blob), w.encode_double(3, scale)
    rejected(scale_field + sizes_field + blob_field)
    rejected(blob_field + sizes_field + scale_field)
    rejected(sizes_field + blob_field + w.encode_double(4, scale))
    rejected(sizes_field + blob_field)  # scale omitted (what proto3 does for 0.0)
    unpacked = w.encode_varint(1 << 3 | w.VARINT) + w.encode_varint(N)
    rejected(unpacked + blob_field + scale_field)


BAD_SCALES = [math.nan, 0.0, -(2.0**40), 2.0**41, 2.0**40 + 1, math.inf, -0.0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scale", BAD_SCALES)
def test_rejects_bad_vector_scale(genuine: bytes, scale: float) -> None:
    sizes, blob, _ = split(genuine)
    crafted = w.encode_len(1, w.encode_varint(sizes[0])) + w.encode_len(2, blob)
    rejected(crafted + w.encode_double(3, scale))  # written even when 0.0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scale", BAD_SCALES)
def test_rejects_bad_seal_scale(genuine: bytes, scale: float) -> None:
    rejected(with_blob(genuine, SCALE, "<d", scale))


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [
        (0, "<H", 0xA15F),  # magic
        (2, "<B", 17),  # header size
        (3, "<B", 3),  # SEAL major version
        (5, "<B", w.COMPR_ZSTD),  # compression mode
        (5, "<B", w.COMPR_ZLIB),
        (6, "<H", 1),  # reserved
        (8, "<Q", 2**40),  # declared size
        (NTT, "<B", 0),
        (SIZE, "<Q", 3),
        (SIZE, "<Q", 0),
        (DEGREE, "<Q", 4096),
        (N_MODULI, "<Q", 2),
        (N_MODULI, "<Q", 2**61),
        (CORRECTION, "<Q", 0),
        (INNER_HEADER, "<H", 0),
        (INNER_HEADER + 5, "<B", w.COMPR_ZSTD),
        (INNER_HEADER + 8, "<Q", 0),
        (COUNT, "<Q", 2 * 3 * 8192 + 1),
        (COUNT, "<Q", 0),
        (DATA, "<Q", 2**60),  # first coefficient beyond the 60-bit prime
        (DATA + 8 * 8192, "<Q", 2**40),  # a coefficient beyond its 40-bit prime
    ],
)
def test_rejects_tampered_seal_fields(genuine: bytes, offset: int, fmt: str, value: int) -> None:
    rejected(with_blob(genuine, offset, fmt, value))


@pytest.mark.timeout(30)
def test_rejects_ciphertext_made_under_another_degree() -> None:
    params = CkksParams(poly_modulus_degree=16384)
    other = KeyHolder.create(params)
    (ciphertext,) = encrypt_packed(other.public_context_bytes(), VALUES, Layout(N, params))
    validate_ciphertext(ciphertext, expected_size=N, params=params)  # fine under its own
    assert "length" in rejected(ciphertext).reason


@pytest.mark.timeout(30)
def test_rejects_a_foreign_parms_id(genuine: bytes) -> None:
    rejected(genuine, parms_id=b"\x00" * 32)


@pytest.mark.timeout(30)
def test_rejects_every_single_byte_flip_in_the_header_region(genuine: bytes) -> None:
    """Framing and metadata (first 8 + 113 bytes, last 9 bytes): every flip is caught.

    The parms_id (bytes 16..48 of the blob) is caught when the caller pins it, as the key
    holder and the accumulator do. Flips inside the coefficients are undetectable here;
    payloads must be authenticated by the transport.
    """
    _, blob, _ = split(genuine)
    blob_at = genuine.index(blob[:16])
    parms_id = blob[PARMS_ID : PARMS_ID + 32]
    positions = [*range(blob_at + DATA), *range(len(genuine) - 9, len(genuine))]
    for position in positions:
        flipped = bytearray(genuine)
        flipped[position] ^= 0x01
        rejected(bytes(flipped), parms_id=parms_id)


@pytest.mark.timeout(30)
def test_coefficient_above_its_prime_passes_bit_check_but_seal_refuses(
    holder: KeyHolder, genuine: bytes
) -> None:
    tampered = with_blob(genuine, DATA + 8 * 8192, "<Q", 2**40 - 1)  # >= the 40-bit prime
    validate_ciphertext(tampered, expected_size=N, params=PARAMS)
    accumulator = Accumulator(holder.params_context_bytes(), Layout(N))
    with pytest.raises(CiphertextRejected):
        accumulator.add([tampered])
    assert accumulator.count == 0


# --- contexts -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_context_validation(holder: KeyHolder) -> None:
    public, params_only = holder.public_context_bytes(), holder.params_context_bytes()
    assert validate_context(public, require_public_key=True).has_public_key
    assert not validate_context(params_only).has_public_key
    with pytest.raises(CryptoError, match="public key"):
        validate_context(params_only, require_public_key=True)
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    private = ctx.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False)
    with pytest.raises(CryptoError, match="secret key"):
        validate_context(private)
    assert validate_context(private, allow_secret_key=True).has_secret_key
    with pytest.raises(CryptoError, match="exceeds"):
        validate_context(public, max_bytes=len(public) - 1)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b + w.encode_varint(4 << 3) + w.encode_varint(1),  # symmetric encryption
        lambda b: b + w.encode_len(1, b[2:87]),  # encryption parameters twice
        lambda b: b + w.encode_len(9, b"x"),  # unknown field
        lambda b: b"\x0a\x05hello",
    ],
)
def test_rejects_malformed_contexts(holder: KeyHolder, mangle: object) -> None:
    with pytest.raises(CryptoError):
        validate_context(mangle(holder.params_context_bytes()))  # type: ignore[operator]


# --- fuzzing ----------------------------------------------------------------------------------

_HEADER_END = 8 + DATA


@st.composite
def mutations(draw: st.DrawFn, length: int) -> tuple[str, int, bytes]:
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete"]))
    position = draw(
        st.one_of(
            st.integers(0, _HEADER_END),
            st.integers(length - 12, length - 1),
            st.integers(0, length - 1),
        )
    )
    payload = draw(st.binary(min_size=1, max_size=16))
    return kind, position, payload


def mutate(data: bytes, kind: str, position: int, payload: bytes) -> bytes:
    if kind == "flip":
        return data[:position] + bytes([data[position] ^ (payload[0] or 1)]) + data[position + 1 :]
    if kind == "overwrite":
        return data[:position] + payload + data[position + len(payload) :]
    if kind == "truncate":
        return data[:position]
    if kind == "insert":
        return data[:position] + payload + data[position:]
    return data[:position] + data[position + len(payload) :]


@pytest.mark.timeout(120)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutations_are_rejected_or_harmless(holder: KeyHolder, genuine: bytes, data) -> None:  # type: ignore[no-untyped-def]
    kind, position, payload = data.draw(mutations(len(genuine)))
    mutated = mutate(genuine, kind, position, payload)
    layout = Layout(N)
    try:
        validate_ciphertext(mutated, expected_size=N, params=PARAMS)
    except CiphertextRejected:
        return
    accumulator = Accumulator(holder.params_context_bytes(), layout)
    try:
        accumulator.add([genuine])
        accumulator.add([mutated])
    except ProtocolError:
        return
    values = holder.decrypt(accumulator.result(), layout)
    assert len(values) == N
