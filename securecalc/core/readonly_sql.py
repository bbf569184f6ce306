"""Refuse a declared query unless it is a single SELECT (or WITH ... SELECT) statement.

This is a first, lexical line of defence; the query also runs in a READ ONLY transaction.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _code_only(query: str) -> str:
    """``query`` with comments, string literals and quoted identifiers blanked out (as
    spaces: every character keeps its position)."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if query.startswith("--", i):
            end = query.find("\n", i)
            start, i = i, n if end < 0 else end
            out.append(" " * (i - start))
        elif query.startswith("/*", i):
            start, depth, i = i, 1, i + 2
            while i < n and depth:
                if query.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif query.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise ValueError("the query has an unterminated comment")
            out.append(" " * (i - start))
        elif ch in "'\"":
            j = i + 1
            while True:
                j = query.find(ch, j)
                if j < 0:
                    raise ValueError("the query has an unterminated quote")
                if query.startswith(ch * 2, j):
                    j += 2
                    continue
                break
            out.append(" " * (j + 1 - i))
            i = j + 1
        elif ch == "$" and (tag := _DOLLAR_TAG.match(query, i)):
            end = query.find(tag.group(0), tag.end())
            if end < 0:
                raise ValueError("the query has an unterminated dollar-quoted string")
            end += len(tag.group(0))
            out.append(" " * (end - i))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def check_select_only(query: str) -> str:
    """The query without a trailing semicolon; ValueError unless it is one SELECT/WITH."""
    code = _code_only(query).rstrip()
    if code.endswith(";"):  # drop the final semicolon (and any comment after it)
        code = code[:-1]
        query = query[: len(code)]
    code = code.strip()
    if ";" in code:
        raise ValueError("the query must be a single statement")
    first = re.match(r"[A-Za-z]+", code)
    if first is None or first.group(0).lower() not in ("select", "with"):
        raise ValueError("the query must be a SELECT or WITH ... SELECT statement")
    if re.search(r"\binto\b", code, re.IGNORECASE):
        raise ValueError("the query must not write (SELECT ... INTO)")
    return query


__all__ = ["check_select_only"]
