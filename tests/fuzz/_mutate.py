"""Hypothesis strategies that damage valid inputs: bytes, text and JSON-like values."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

# characters that parsers, paths and logs treat specially
SPECIAL = ["\x00", "\n", "\r", "\t", "`", "'", '"', "\\", "\u2028", "\ufeff", "\U0001f600",
           "..", "/", "%s", "{}", "#"]

leaves: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64, math.nan, math.inf, -math.inf, 1e308,
                     -0.0, 5e-324, "", " ", "\x00", "a" * 300]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))

json_values: st.SearchStrategy[Any] = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes, max_steps: int = 4) -> bytes:
    """``data`` after a few flips, overwrites, truncations, insertions or deletions."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete",
                                   "duplicate"]))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[at] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "truncate":
            del buf[at:]
        elif op == "extend":
            buf += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[at:at + draw(st.integers(1, 64))]
        elif op == "duplicate":
            buf[at:at] = buf[at:at + draw(st.integers(1, 64))]
    return bytes(buf)


@st.composite
def mutated_text(draw: st.DrawFn, text: str, alphabet: str = "", max_steps: int = 4) -> str:
    """``text`` with a few characters or snippets of ``alphabet`` replaced, inserted, removed."""
    chars = list(text)
    snippet = (st.text(alphabet=alphabet, min_size=1, max_size=6) if alphabet else st.text(
        min_size=1, max_size=6)) | st.sampled_from(SPECIAL)
    for _ in range(draw(st.integers(1, max_steps))):
        at = draw(st.integers(0, len(chars)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "repeat",
                                   "nest"]))
        if op == "insert":
            chars[at:at] = draw(snippet)
        elif op == "delete":
            del chars[at:at + draw(st.integers(1, 4))]
        elif op == "replace":
            chars[at:at + 1] = draw(snippet)
        elif op == "truncate":
            del chars[at:]
        elif op == "repeat":
            chars[at:at] = chars[at:at + draw(st.integers(1, 8))] * draw(st.integers(1, 64))
        elif op == "nest":  # deep nesting, which recursive parsers must survive
            chars[at:at] = draw(st.sampled_from(["[", "{", "(", '{"a":', "a={", "not "])) * draw(
                st.sampled_from([60, 1000, 20_000]))
    return "".join(chars)


@st.composite
def mutated_json(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` (parsed JSON or TOML) with a few entries dropped, added, replaced or grown."""
    if isinstance(value, dict) and depth < 4:
        out = dict(value)
        for _ in range(draw(st.integers(0, 2))):
            op = draw(st.sampled_from(["mutate", "mutate", "mutate", "drop", "add", "replace"]))
            keys = sorted(out, key=str)
            if op == "mutate" and keys:
                key = draw(st.sampled_from(keys))
                out[key] = draw(mutated_json(out[key], depth + 1))
            elif op == "drop" and keys:
                del out[draw(st.sampled_from(keys))]
            elif op == "add":
                out[draw(st.text(max_size=10) | st.sampled_from(keys or ["x"]))] = draw(
                    json_values)
            elif op == "replace":
                return draw(json_values)
        return out
    if isinstance(value, list) and depth < 4:
        out_list = list(value)
        op = draw(st.sampled_from(["mutate", "mutate", "drop", "grow", "huge", "replace",
                                   "keep"]))
        if op == "mutate" and out_list:
            i = draw(st.integers(0, len(out_list) - 1))
            out_list[i] = draw(mutated_json(out_list[i], depth + 1))
        elif op == "drop" and out_list:
            del out_list[draw(st.integers(0, len(out_list) - 1))]
        elif op == "grow":
            out_list.append(draw(json_values) if not out_list else out_list[-1])
        elif op == "huge":  # just past the limits table's list sizes
            n = draw(st.sampled_from([65, 257, 513, 1025, 1026, 65537, 100_001]))
            item = out_list[-1] if out_list else draw(leaves)
            out_list = [item] * n if not isinstance(item, int | float) else [
                item + i for i in range(n)]
        elif op == "replace":
            return draw(json_values)
        return out_list
    if isinstance(value, str) and draw(st.booleans()):
        return draw(mutated_text(value))
    return draw(st.sampled_from([value, value]) | leaves) if draw(st.booleans()) else value


deep_json: st.SearchStrategy[str] = st.builds(
    lambda opener, n: opener * n, st.sampled_from(["[", '{"a":', "[{\"a\":"]),
    st.sampled_from([100, 5000, 100_000]))
"""JSON text nested far deeper than any document of ours (recursive decoders must refuse)."""
