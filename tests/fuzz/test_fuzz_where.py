"""Fuzz the where-language: random text, token soup and damaged valid expressions.

Whatever parses must also evaluate on a table (with missing values and values at the
bounds) and print canonical text that parses to the same text; anything else must be a
WhereError. The length and depth limits bound every case.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from securecalc.core.limits import WHERE_CHARS
from securecalc.core.schema import Column, Schema
from securecalc.core.table import Table
from securecalc.core.where import Predicate, parse_where
from securecalc.errors import WhereError
from tests.fuzz._harness import MiB, bounded_memory, fuzz, outcome
from tests.fuzz._mutate import mutated_text

LEVELS = ("a", "b", "it's", 'q"uote', "back\\slash")
SCHEMA = Schema({
    "x": Column("x", "int", min=-5, max=5),
    "y": Column("y", "float", min=-2.5, max=2.5),
    "c": Column("c", "category", levels=LEVELS),
    "in": Column("in", "int", min=0, max=2**40),
    "Ärzt_1": Column("Ärzt_1", "float", min=0.0, max=1e300),
    "two words": Column("two words", "category", levels=("x", "")),
})
ROWS = {
    "x": [-5, 0, 5, None],
    "y": [-2.5, 0.0, None, 2.5],
    "c": ["a", None, "it's", "back\\slash"],
    "in": [0, 2**40, None, 7],
    "Ärzt_1": [0.0, 1e300, 0.5, None],
    "two words": ["", "x", None, "x"],
}
TABLE = Table.from_columns(SCHEMA, ROWS)
GRAMMAR_CHARS = "xyc`Ärzt_1 in not and or ()[],'\"\\=!<>-+.eE0123456789 \t\n"

columns = st.sampled_from(["x", "y", "c", "`in`", "in", "`x`", "Ärzt_1", "`Ärzt_1`", "X",
                           "``", "`", "z", "`two words`", "two words", "`two"])
ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "=", "!", "=<", "<>"])
numbers = st.one_of(
    st.integers(-10, 10).map(str),
    st.integers(-(10**400), 10**400).map(str),
    st.sampled_from(["1e308", "1e309", "-1e309", "1e-400", ".5", "5.", "-0", "-.0", "0e0",
                     "1" * 600, "9" * 4000, "1.5e", "--1", "0x10", "1_000", "nan", "inf"]),
    st.floats(allow_nan=False).map(repr))
strings = st.sampled_from(["'x'", "'a'", '"b"', "'it\\'s'", "'q\"uote'", "'back\\\\slash'",
                           "'unknown'",
                           "'", "'a", "'\\'", '"', "''", "'\\x'", "'\u00e9'"])
punct = st.sampled_from(["(", ")", "[", "]", ",", "not", "and", "or", "in", "not in"])
tokens = st.one_of(columns, ops, numbers, strings, punct)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    """A mostly valid expression of the grammar (literals may not fit their column)."""
    choice = draw(st.integers(0, 5 if depth < 6 else 1))
    if choice == 0:
        column = draw(st.sampled_from(["x", "y", "`in`", "Ärzt_1"]))
        return f"{column} {draw(ops)} {draw(numbers)}"
    if choice == 1:
        items = draw(st.lists(strings | numbers, min_size=1, max_size=5))
        column = draw(st.sampled_from(["c", "x", "`in`", "`two words`"]))
        return f"{column} {draw(st.sampled_from(['in', 'not in']))} [{', '.join(items)}]"
    if choice == 2:
        return f"not {draw(expressions(depth + 1))}"
    if choice == 3:
        return f"({draw(expressions(depth + 1))})"
    word = draw(st.sampled_from(["and", "or"]))
    return f"{draw(expressions(depth + 1))} {word} {draw(expressions(depth + 1))}"


def soup(parts: list[str], glue: list[str]) -> str:
    return "".join(p + g for p, g in zip(parts, glue + [""] * len(parts), strict=False))


texts = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=GRAMMAR_CHARS, max_size=120),
    st.builds(soup, st.lists(tokens, max_size=30), st.lists(st.sampled_from(["", " ", "\t"]))),
    expressions(),
    expressions().flatmap(lambda e: mutated_text(e, GRAMMAR_CHARS)),
    st.sampled_from(["(" * 60 + "x == 1" + ")" * 60, "not " * 60 + "x == 1",
                     " or ".join(["x == 1"] * 300), "c in [" + ", ".join(["'a'"] * 2000) + "]",
                     "x == " + "1" * (WHERE_CHARS.value - 5), "x == 1" + " " * WHERE_CHARS.value]))


def check(text: str) -> None:
    """Parse; a predicate must evaluate and round-trip through its canonical text."""
    predicate = outcome(lambda: parse_where(text, SCHEMA))
    if isinstance(predicate, Predicate):
        mask = predicate.evaluate(TABLE)
        assert mask.shape == (TABLE.n_rows,) and mask.dtype == bool
        canonical = str(predicate)
        assert str(parse_where(canonical, SCHEMA)) == canonical
    else:
        assert isinstance(predicate, WhereError)


@fuzz(300)
@given(text=texts)
def test_where_expressions(text: str) -> None:
    with bounded_memory(16 * MiB):
        check(text)
