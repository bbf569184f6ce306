"""Fuzz the CKKS validators with damaged genuine ciphertexts and contexts.

One key holder, ciphertext and pair of contexts are made per module. Cases flip, overwrite,
truncate and extend their bytes (biased towards the headers, where the metadata TenSEAL
trusts lives) or rewrite parsed fields. The validators must raise CiphertextRejected or
CryptoError; what they accept is then loaded by TenSEAL (the compute node's accumulator, a
node's context loader), which must raise only those errors too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securecalc.engines.ckks import (
    Accumulator,
    CkksParams,
    ContextInfo,
    KeyHolder,
    Layout,
    _tenseal,
    encrypt_packed,
    validate_ciphertext,
    validate_context,
)
from securecalc.engines.ckks import _wire as w
from securecalc.engines.ckks.validate import CiphertextRejected
from securecalc.errors import CryptoError
from tests.fuzz._harness import MiB, bounded_memory, fuzz, outcome

PARAMS = CkksParams(poly_modulus_degree=4096, coeff_mod_bit_sizes=(40, 20, 40), scale_bits=20)
N = 5
# (offset inside the SEAL blob, struct format) of every field validate._check_seal_blob reads
BLOB_FIELDS = [(0, "<H"), (2, "<B"), (3, "<B"), (4, "<B"), (5, "<B"), (6, "<H"), (8, "<Q"),
               (16, "<32s"), (48, "<B"), (49, "<Q"), (57, "<Q"), (65, "<Q"), (73, "<d"),
               (81, "<Q"), (89, "<H"), (97, "<Q"), (105, "<Q")]
MEMORY = 32 * MiB  # a ciphertext here is under 200 KB


@dataclass(frozen=True)
class Genuine:
    holder: KeyHolder
    ciphertext: bytes
    public_context: bytes
    params_context: bytes
    sizes: list[int]
    blob: bytes
    scale: float


@pytest.fixture(scope="module")
def genuine() -> Genuine:
    holder = KeyHolder.create(PARAMS, max_decryptions=0)
    public = holder.public_context_bytes()
    (ciphertext,) = encrypt_packed(public, [1.5, -2.0, 0.0, 1e3, 7.25], Layout(N, PARAMS))
    fields = list(w.iter_fields(memoryview(ciphertext)))
    (scale,) = struct.unpack("<d", fields[2].value)  # type: ignore[arg-type]
    return Genuine(holder, ciphertext, public, holder.params_context_bytes(),
                   w.packed_varints(fields[0].value), bytes(fields[1].value),  # type: ignore[arg-type]
                   scale)


@st.composite
def damaged(draw: st.DrawFn, data: bytes, head: int) -> bytes:
    """``data`` with a few byte-level changes, most within its first ``head`` bytes."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        end = head if draw(st.integers(0, 3)) else len(buf)
        at = draw(st.integers(0, max(min(end, len(buf)) - 1, 0)))
        op = draw(st.sampled_from(["flip", "flip", "set", "truncate", "extend", "insert",
                                   "delete"]))
        if op == "flip" and buf:
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del buf[at:]
        elif op == "extend":
            buf += draw(st.binary(min_size=1, max_size=32))
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[at:at + draw(st.integers(1, 16))]
    return bytes(buf)


@st.composite
def rewritten(draw: st.DrawFn, g: Genuine) -> bytes:
    """The genuine vector re-encoded with parsed fields changed: sizes, scale, blob fields."""
    blob = bytearray(g.blob)
    for _ in range(draw(st.integers(0, 3))):
        offset, fmt = draw(st.sampled_from(BLOB_FIELDS))
        size = struct.calcsize(fmt)
        if fmt == "<32s":
            value: object = draw(st.binary(min_size=32, max_size=32))
        elif fmt == "<d":
            value = draw(st.floats() | st.sampled_from([g.scale, 0.0, -g.scale, g.scale * 2]))
        else:
            value = draw(st.integers(0, 2 ** (8 * size) - 1)
                         | st.sampled_from([0, 1, 2, 4096, 2**63 + 1])) % 2 ** (8 * size)
        struct.pack_into(fmt, blob, offset, value)
    if draw(st.booleans()):  # a coefficient at or just above its modulus size
        index = draw(st.integers(0, (len(blob) - 113) // 8 - 1))
        struct.pack_into("<Q", blob, 113 + 8 * index,
                         draw(st.sampled_from([2**20 - 1, 2**20, 2**40 - 1, 2**40, 2**64 - 1])))
    sizes = draw(st.sampled_from([g.sizes, [], [N, N], [0], [N + 1], [2**63], [2048], [2049]]))
    blobs = draw(st.sampled_from([[bytes(blob)], [bytes(blob)] * 2, [], [bytes(blob)[:-8]]]))
    scale = draw(st.sampled_from([g.scale, g.scale * 2, 0.0]) | st.floats())
    return w.encode_ckks_vector(sizes, blobs, scale)


@st.composite
def coefficients(draw: st.DrawFn, g: Genuine) -> bytes:
    """The genuine vector with a few coefficients changed: the metadata stays canonical, so
    these reach TenSEAL, whose own load checks each coefficient against its prime."""
    blob = bytearray(g.blob)
    count = (len(blob) - 113) // 8
    bits = PARAMS.data_bit_sizes
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, count - 1))
        size = bits[index // PARAMS.poly_modulus_degree % len(bits)]
        value = draw(st.integers(0, 2**size - 1) | st.sampled_from([2**size - 1, 2**size - 2]))
        struct.pack_into("<Q", blob, 113 + 8 * index, value)
    return w.encode_ckks_vector(g.sizes, [bytes(blob)], g.scale)


@pytest.fixture(scope="module")
def accumulator(genuine: Genuine) -> Accumulator:
    return Accumulator(genuine.params_context, Layout(N, PARAMS))


@fuzz(250)
@given(data=st.data())
def test_ciphertexts(genuine: Genuine, accumulator: Accumulator, data: st.DataObject) -> None:
    """A damaged ciphertext is rejected, or it is sound enough for TenSEAL to load and add."""
    g = genuine
    ciphertext = data.draw(st.one_of(damaged(g.ciphertext, 200), rewritten(g), coefficients(g),
                                     st.binary(max_size=256)))
    expected = data.draw(st.sampled_from([N, N, 1, PARAMS.slots]))
    with bounded_memory(MEMORY):
        result = outcome(lambda: validate_ciphertext(ciphertext, expected_size=expected,
                                                     params=PARAMS))
        assert result is None or isinstance(result, CiphertextRejected)
        if result is None and expected == N:
            added = outcome(lambda: accumulator.add([ciphertext]))
            assert added is None or isinstance(added, CiphertextRejected)


@fuzz(200)
@given(data=st.data())
def test_contexts(genuine: Genuine, data: st.DataObject) -> None:
    """A damaged context is rejected, or TenSEAL loads it (or refuses it) without crashing."""
    g = genuine
    source = data.draw(st.sampled_from([g.params_context, g.public_context]))
    context = data.draw(damaged(source, 160) | st.binary(max_size=256))
    public = data.draw(st.booleans())
    with bounded_memory(MEMORY):
        info = outcome(lambda: validate_context(context, require_public_key=public))
        assert isinstance(info, ContextInfo | CryptoError)
        if isinstance(info, ContextInfo):
            assert not info.has_secret_key
            loaded = outcome(lambda: _tenseal.load_context(
                context, PARAMS, allow_secret_key=False, require_public_key=public))
            assert not isinstance(loaded, BaseException) or isinstance(loaded, CryptoError)


def test_genuine_inputs_pass(genuine: Genuine, accumulator: Accumulator) -> None:
    """The seeds validate, so damaged copies start from inputs that reach every check."""
    validate_ciphertext(genuine.ciphertext, expected_size=N, params=PARAMS)
    accumulator.add([genuine.ciphertext])
    assert validate_context(genuine.public_context, require_public_key=True).has_public_key
    assert not validate_context(genuine.params_context).has_public_key
