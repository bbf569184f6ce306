"""Splitting large objects into stream chunks and joining them with a bound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from securecalc.errors import ProtocolError
from securecalc.transport.chunks import CHUNK_BYTES, join, split


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n", [1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES])
def test_round_trip(n: int) -> None:
    data = bytes(range(256)) * (n // 256) + bytes(n % 256)
    chunks = list(split(data))
    assert all(0 < len(c) <= CHUNK_BYTES for c in chunks)
    assert len(chunks) == -(-n // CHUNK_BYTES)
    assert join(chunks, max_bytes=n) == data


@pytest.mark.timeout(10)
def test_empty_and_small_sizes() -> None:
    assert list(split(b"")) == [b""]
    assert join(split(b""), max_bytes=0) == b""
    assert list(split(b"abcde", size=2)) == [b"ab", b"cd", b"e"]
    with pytest.raises(ValueError):
        list(split(b"x", size=0))


@pytest.mark.timeout(10)
def test_join_refuses_too_much_without_reading_on() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 1000

    with pytest.raises(ProtocolError, match="exceeds 2500 bytes"):
        join(endless(), max_bytes=2500)
    assert join([b"ab", b"cd"], max_bytes=4) == b"abcd"
    with pytest.raises(ProtocolError):
        join([b"ab", "cd"], max_bytes=10)  # type: ignore[list-item]
