"""Large objects (ciphertexts, contexts) travel as streams of 1 MiB chunks.

gRPC refuses single messages above the receive limit (4 MiB by default; ours is explicit),
and chunks of about 1 MiB streamed at about 500 MB/s on loopback. The receiver bounds the
total so a peer cannot make it buffer without limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from securecalc.errors import ProtocolError

CHUNK_BYTES = 1024 * 1024


def split(data: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yield ``data`` in pieces of at most ``size`` bytes; empty data yields one empty chunk."""
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not data:
        yield b""
        return
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


def join(chunks: Iterable[bytes], *, max_bytes: int) -> bytes:
    """Concatenate received chunks; ProtocolError as soon as the total passes ``max_bytes``."""
    out = bytearray()
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise ProtocolError(f"chunk of type {type(chunk).__name__}, expected bytes")
        if len(out) + len(chunk) > max_bytes:
            raise ProtocolError(f"stream exceeds {max_bytes} bytes")
        out += chunk
    return bytes(out)


def join_indexed(pieces: Iterable[tuple[int, bytes]], count: int, *, max_each: int,
                 max_total: int | None = None) -> list[bytes]:
    """Reassemble ``count`` objects from ``(index, chunk)`` pairs in order; ProtocolError
    for an index outside ``range(count)``, an object above ``max_each`` bytes or a total
    above ``max_total``."""
    parts: list[list[bytes]] = [[] for _ in range(count)]
    sizes = [0] * count
    total = 0
    for index, chunk in pieces:
        if not 0 <= index < count:
            raise ProtocolError("chunk outside the job's layout")
        sizes[index] += len(chunk)
        total += len(chunk)
        if sizes[index] > max_each:
            raise ProtocolError("ciphertext too large")
        if max_total is not None and total > max_total:
            raise ProtocolError(f"stream exceeds {max_total} bytes")
        parts[index].append(chunk)
    return [b"".join(p) for p in parts]


__all__ = ["CHUNK_BYTES", "join", "join_indexed", "split"]
