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


__all__ = ["CHUNK_BYTES", "join", "split"]
