"""The ``where`` filter language: parsed against the schema, evaluated on a :class:`Table`.

Grammar (keywords are lowercase and case-sensitive)::

    expr       := or
    or         := and ('or' and)*
    and        := not ('and' not)*
    not        := 'not' not | primary
    primary    := '(' expr ')' | comparison
    comparison := COLUMN op literal
                | COLUMN ['not'] 'in' '[' literal (',' literal)* [','] ']'
    COLUMN     := name | `name`                   (backticks quote a column name)
    op         := '==' | '!=' | '<' | '<=' | '>' | '>='
    literal    := number | 'string' | "string"     (backslash escapes the quote and itself)

A column name may always be written in backticks, and must be when it is a keyword (``and``,
``or``, ``not``, ``in``) or not a plain word of letters, digits and underscores::

    `in` == 1 and `not` not in [0, 2]

Only the lowercase words are keywords, so ``AND`` or ``In`` name columns without quotes.
Column names are identifiers and never hold a backtick, so a quoted name has no escapes.

Text is tokenized and parsed by hand; nothing is ever evaluated as code or SQL. Missing
values follow SQL's three-valued (Kleene) logic: a comparison involving a missing value is
UNKNOWN, ``not UNKNOWN`` is UNKNOWN, and rows whose filter ends UNKNOWN are excluded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from securecalc.core.limits import IN_LIST, WHERE_CHARS, WHERE_COMPARISONS, WHERE_DEPTH
from securecalc.core.schema import Column, Schema
from securecalc.errors import WhereError

if TYPE_CHECKING:
    from securecalc.core.table import Table

Op = Literal["==", "!=", "<", "<=", ">", ">="]
Value = int | float | str
KEYWORDS = frozenset({"and", "or", "not", "in"})
ORDER_OPS = frozenset({"<", "<=", ">", ">="})


# --------------------------------------------------------------------------- tokens


class _Token(NamedTuple):
    kind: str  # "op" | "punct" | "number" | "string" | "name" | "keyword" | "end"
    text: str  # source text of the token
    value: Value | None  # a literal's value; a name's column name (without backticks)
    pos: int  # 0-based offset into the expression


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[^\W\d]\w*")
_OPS: tuple[Op, ...] = ("==", "!=", "<=", ">=", "<", ">")
_OP_OF: dict[str, Op] = {op: op for op in _OPS}
_PUNCT = "()[],"


def _fail(text: str, message: str, pos: int, detail: str | None = None) -> WhereError:
    """``where 'age >> 5': unexpected '>' at column 6 (expected a number ...)``."""
    extra = f" ({detail})" if detail else ""
    return WhereError(f"where {text!r}: {message} at column {pos + 1}{extra}")


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens on demand, so that the leftmost problem is the one reported."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            yield _Token("op", op, None, i)
            i += len(op)
        elif ch in _PUNCT:
            yield _Token("punct", ch, None, i)
            i += 1
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _fail(text, "unterminated quoted column name", i)
            if end == i + 1:
                raise _fail(text, "empty quoted column name", i)
            yield _Token("name", text[i : end + 1], text[i + 1 : end], i)
            i = end + 1
        elif ch in "'\"":
            string, end = _read_string(text, i)
            yield _Token("string", text[i:end], string, i)
            i = end
        elif (m := _NUMBER.match(text, i)) is not None:
            literal = m.group()
            number = float(literal) if any(c in literal for c in ".eE") else int(literal)
            if abs(number) > sys.float_info.max:  # inf, or an int no float can hold
                raise _fail(text, f"number {literal} is out of range", i)
            yield _Token("number", literal, number, i)
            i = m.end()
        elif (m := _NAME.match(text, i)) is not None:
            word = m.group()
            if word in KEYWORDS:
                yield _Token("keyword", word, None, i)
            else:
                yield _Token("name", word, word, i)
            i = m.end()
        else:
            raise _fail(text, f"unexpected {ch!r}", i)
    yield _Token("end", "", None, n)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Read the quoted string starting at ``start``; return its value and the end offset."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in (quote, "\\"):
                raise _fail(text, f"unknown escape '\\{nxt}'", i, f"only \\{quote} and \\\\")
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise _fail(text, "unterminated string", start)


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class _All:
    """Keeps every row (no filter)."""


@dataclass(frozen=True)
class _Compare:
    column: Column
    op: Op
    value: Value


@dataclass(frozen=True)
class _In:
    column: Column
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class _Not:
    child: _Node


@dataclass(frozen=True)
class _And:
    children: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    children: tuple[_Node, ...]


_Node = _All | _Compare | _In | _Not | _And | _Or


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, schema: Schema):
        self.text = text
        self.schema = schema
        self.tokens = _tokenize(text)
        self.tok = next(self.tokens)
        self.depth = 0
        self.comparisons = 0

    # helpers
    def advance(self) -> _Token:
        tok = self.tok
        if tok.kind != "end":
            self.tok = next(self.tokens)
        return tok

    def fail(
        self, message: str, tok: _Token | None = None, detail: str | None = None
    ) -> WhereError:
        return _fail(self.text, message, (tok or self.tok).pos, detail)

    def unexpected(self, expected: str) -> WhereError:
        tok = self.tok
        what = "end of expression" if tok.kind == "end" else repr(tok.text)
        return self.fail(f"unexpected {what}", tok, f"expected {expected}")

    def accept(self, kind: str, text: str) -> _Token | None:
        tok = self.tok
        if tok.kind == kind and tok.text == text:
            return self.advance()
        return None

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > WHERE_DEPTH.value:
            raise self.fail(f"nesting deeper than {WHERE_DEPTH.value} levels (limits table in "
                            "the README)", tok)

    # grammar
    def parse(self) -> _Node:
        node = self.parse_or()
        if self.tok.kind != "end":
            if self.tok.text == ")":
                raise self.fail("unbalanced parentheses: unmatched ')'")
            raise self.fail(
                f"unexpected {self.tok.text!r}",
                detail="expected 'and', 'or' or the end",
            )
        return node

    def parse_or(self) -> _Node:
        parts = [self.parse_and()]
        while self.accept("keyword", "or"):
            parts.append(self.parse_and())
        return _flatten(_Or, parts)

    def parse_and(self) -> _Node:
        parts = [self.parse_not()]
        while self.accept("keyword", "and"):
            parts.append(self.parse_not())
        return _flatten(_And, parts)

    def parse_not(self) -> _Node:
        tok = self.accept("keyword", "not")
        if tok is None:
            return self.parse_primary()
        self.enter(tok)
        node = _Not(self.parse_not())
        self.depth -= 1
        return node

    def parse_primary(self) -> _Node:
        tok = self.accept("punct", "(")
        if tok is None:
            return self.parse_comparison()
        self.enter(tok)
        node = self.parse_or()
        if not self.accept("punct", ")"):
            if self.tok.kind == "end":
                raise self.fail("unbalanced parentheses: '(' is never closed", tok)
            raise self.unexpected("')'")
        self.depth -= 1
        return node

    def parse_comparison(self) -> _Node:
        tok = self.tok
        self.comparisons += 1
        if self.comparisons > WHERE_COMPARISONS.value:
            raise self.fail(f"more than {WHERE_COMPARISONS.value} comparisons (limits table "
                            "in the README)", tok)
        if tok.kind != "name":
            clashes = [n for n in self.schema.names() if n in KEYWORDS]
            if tok.kind == "keyword" and tok.text in clashes:
                clashes.insert(0, tok.text)
            hint = f"; write column {clashes[0]!r} as `{clashes[0]}`" if clashes else ""
            raise self.unexpected("a column name" + hint)
        name = str(tok.value)
        if name not in self.schema:
            known = ", ".join(self.schema.names()) or "none"
            raise self.fail(f"unknown column {name!r}", tok, f"known: {known}")
        column = self.schema.columns[name]
        self.advance()
        op_tok = self.tok
        if op_tok.kind == "op":
            self.advance()
            if op_tok.text in ORDER_OPS and column.type == "category":
                raise self.fail(
                    f"order comparison {op_tok.text!r} on category column {column.name!r}",
                    op_tok,
                    "categories allow ==, !=, in, not in",
                )
            return _Compare(column, _OP_OF[op_tok.text], self.literal(column))
        negated = self.accept("keyword", "not") is not None
        if not self.accept("keyword", "in"):
            raise self.unexpected("'in'" if negated else "a comparison operator or 'in'")
        bracket = self.tok
        if not self.accept("punct", "["):
            raise self.unexpected("'['")
        if self.tok.text == "]" and self.tok.kind == "punct":
            raise self.fail("empty 'in' list", bracket)
        values = [self.literal(column)]
        while self.accept("punct", ","):
            if self.tok.kind == "punct" and self.tok.text == "]":
                break
            if len(values) == IN_LIST.value:
                raise self.fail(f"an 'in' list of more than {IN_LIST.value} values (limits "
                                "table in the README)", self.tok)
            values.append(self.literal(column))
        if not self.accept("punct", "]"):
            raise self.unexpected("',' or ']'")
        return _In(column, tuple(dict.fromkeys(values)), negated)

    def literal(self, column: Column) -> Value:
        tok = self.tok
        if tok.kind not in ("number", "string"):
            raise self.unexpected("a number or a quoted string")
        self.advance()
        assert tok.value is not None
        if column.type == "category":
            levels = "levels: " + ", ".join(repr(level) for level in column.levels)
            if tok.kind != "string":
                raise self.fail(
                    f"category column {column.name!r} compared with non-string {tok.text}",
                    tok,
                    levels,
                )
            if tok.value not in column.levels:
                raise self.fail(f"unknown level {tok.value!r} of {column.name!r}", tok, levels)
        elif tok.kind == "string":
            raise self.fail(
                f"{column.type} column {column.name!r} compared with string {tok.text}", tok
            )
        return tok.value


def _flatten(kind: type[_And] | type[_Or], parts: list[_Node]) -> _Node:
    if len(parts) == 1:
        return parts[0]
    children: list[_Node] = []
    for part in parts:
        children.extend(part.children if isinstance(part, kind) else (part,))
    return kind(tuple(children))


# --------------------------------------------------------------------------- evaluation

# A Kleene truth vector is a pair (is_true, is_false); rows in neither are UNKNOWN.
_Truth = tuple[np.ndarray, np.ndarray]


def _eval(node: _Node, table: Table) -> _Truth:
    if isinstance(node, _All):
        return np.ones(table.n_rows, bool), np.zeros(table.n_rows, bool)
    if isinstance(node, _Not):
        is_true, is_false = _eval(node.child, table)
        return is_false, is_true
    if isinstance(node, _And | _Or):
        truths = [_eval(child, table) for child in node.children]
        trues = np.logical_and if isinstance(node, _And) else np.logical_or
        falses = np.logical_or if isinstance(node, _And) else np.logical_and
        return trues.reduce([t for t, _ in truths]), falses.reduce([f for _, f in truths])
    data = table.column(node.column.name)
    declared = table.schema.columns.get(node.column.name)
    if declared != node.column:
        raise WhereError(
            f"column {node.column.name!r} of the table is declared differently from the schema "
            "this filter was parsed against"
        )
    values, known = data.values, ~data.missing
    if isinstance(node, _Compare):
        hit = _COMPARE[node.op](values, _operand(node.column, node.value))
    else:
        hit = np.isin(values, [_operand(node.column, v) for v in node.values])
        if node.negated:
            hit = ~hit
    return known & hit, known & ~hit


def _operand(column: Column, value: Value) -> int | float:
    """The literal as stored in a column: a level code, or the number."""
    if column.type == "category":
        return column.levels.index(value)
    if isinstance(value, int) and abs(value) < 2**62:
        return value
    return float(value)


_COMPARE = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


# --------------------------------------------------------------------------- canonical text


def _name_text(name: str) -> str:
    """A column name as written in a filter: bare, or in backticks where it must be."""
    if name in KEYWORDS or _NAME.fullmatch(name) is None:
        return f"`{name}`"
    return name


def _literal_text(value: Value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def _text(node: _Node, parent: int = 0) -> str:
    """Canonical text; ``parent`` is the binding strength the context needs (0 = none)."""
    if isinstance(node, _All):
        return ""
    if isinstance(node, _Compare):
        return f"{_name_text(node.column.name)} {node.op} {_literal_text(node.value)}"
    if isinstance(node, _In):
        items = ", ".join(_literal_text(v) for v in node.values)
        return f"{_name_text(node.column.name)} {'not in' if node.negated else 'in'} [{items}]"
    if isinstance(node, _Not):
        return f"not {_text(node.child, 3)}"
    strength, word = (2, " and ") if isinstance(node, _And) else (1, " or ")
    text = word.join(_text(child, strength + 1) for child in node.children)
    return f"({text})" if strength < parent else text


def _columns(node: _Node) -> frozenset[str]:
    if isinstance(node, _Compare | _In):
        return frozenset({node.column.name})
    if isinstance(node, _Not):
        return _columns(node.child)
    if isinstance(node, _And | _Or):
        return frozenset().union(*(_columns(child) for child in node.children))
    return frozenset()


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Predicate:
    """A parsed, schema-checked row filter. Build it with :func:`parse_where`."""

    _node: _Node

    @property
    def columns(self) -> frozenset[str]:
        """The columns the filter reads."""
        return _columns(self._node)

    @property
    def keeps_all(self) -> bool:
        """True for the empty filter, which keeps every row."""
        return isinstance(self._node, _All)

    def evaluate(self, table: Table) -> np.ndarray:
        """Boolean mask of the rows that satisfy the filter (UNKNOWN rows excluded)."""
        return _eval(self._node, table)[0]

    def __str__(self) -> str:
        return _text(self._node)

    def __repr__(self) -> str:
        return f"Predicate({str(self)!r})"


def parse_where(text: str | None, schema: Schema) -> Predicate:
    """Parse and check a where-expression against ``schema``.

    ``None`` or ``""`` means "no filter" and keeps every row; a non-empty expression made only
    of blanks is an error. Raises :class:`WhereError` naming the problem and its column.
    """
    if text is None or text == "":
        return Predicate(_All())
    if not isinstance(text, str):
        raise WhereError(f"where must be a string, got {type(text).__name__}")
    if len(text) > WHERE_CHARS.value:
        raise WhereError(f"where {text[:40]!r}...: {WHERE_CHARS.message(len(text))}")
    if not text.strip():
        raise _fail(text, "empty expression", 0)
    return Predicate(_Parser(text, schema).parse())


__all__ = ["Predicate", "parse_where"]
