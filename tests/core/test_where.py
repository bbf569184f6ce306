"""The where-language: parsing, schema checks, Kleene evaluation, canonical text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecalc.core.limits import WHERE_CHARS, WHERE_DEPTH
from securecalc.core.schema import Column, Schema, schema_from_mapping
from securecalc.core.table import Table
from securecalc.core.where import parse_where
from securecalc.errors import ConfigError, DataError, WhereError

pytestmark = pytest.mark.timeout(60)

LEVELS = ("a", "b", "it's")
SCHEMA = Schema(
    {
        "x": Column("x", "int", min=-5, max=5),
        "y": Column("y", "float", min=-2.5, max=2.5),
        "c": Column("c", "category", levels=LEVELS),
    }
)
OPS = ("==", "!=", "<", "<=", ">", ">=")
PY_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def table(rows: list[dict[str, object]]) -> Table:
    return Table.from_columns(SCHEMA, {name: [r[name] for r in rows] for name in SCHEMA.names()})


# --------------------------------------------------------------------------- reference model
# A tree is ("cmp", col, op, value, text) | ("in", col, values, texts, negated)
#           | ("not", child) | ("and", left, right) | ("or", left, right).


def ref_eval(tree: tuple, row: dict[str, object]) -> bool | None:
    """Straightforward per-row Kleene logic; None is UNKNOWN."""
    kind = tree[0]
    if kind == "cmp":
        value = row[tree[1]]
        return None if value is None else PY_OPS[tree[2]](value, tree[3])
    if kind == "in":
        value = row[tree[1]]
        if value is None:
            return None
        return (value in tree[2]) != tree[4]
    if kind == "not":
        inner = ref_eval(tree[1], row)
        return None if inner is None else not inner
    left, right = ref_eval(tree[1], row), ref_eval(tree[2], row)
    if kind == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def render(tree: tuple, draw: st.DrawFn) -> str:
    """Text with the fewest parentheses the precedence needs, plus some redundant ones."""
    kind = tree[0]
    if kind == "cmp":
        text = f"{tree[1]}{draw(st.sampled_from(['', ' ']))}{tree[2]} {tree[4]}"
    elif kind == "in":
        items = ", ".join(tree[3]) + draw(st.sampled_from(["", ","]))
        text = f"{tree[1]} {'not in' if tree[4] else 'in'} [{items}]"
    elif kind == "not":
        child = render(tree[1], draw)
        text = f"not {child if tree[1][0] in ('cmp', 'in', 'not') else f'({child})'}"
    else:
        parts = []
        for child in tree[1:]:
            rendered = render(child, draw)
            parts.append(f"({rendered})" if kind == "and" and child[0] == "or" else rendered)
        text = f" {kind} ".join(parts)
    return f"( {text} )" if draw(st.integers(0, 5)) == 0 else text


def quoted(level: str, quote: str) -> str:
    return quote + level.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


@st.composite
def literal(draw: st.DrawFn, col: str) -> tuple[object, str]:
    if col == "c":
        level = draw(st.sampled_from(LEVELS))
        return level, quoted(level, draw(st.sampled_from(["'", '"'])))
    if col == "x":
        number = draw(st.integers(-7, 7))
        text = draw(st.sampled_from([str(number), f"{number}.0", f"{number}e0"]))
        return number, text
    number = draw(st.integers(-6, 6)) / 2
    text = draw(st.sampled_from([repr(number), f"{number * 10:g}e-1"]))
    return number, text


@st.composite
def leaf(draw: st.DrawFn) -> tuple:
    col = draw(st.sampled_from(["x", "y", "c"]))
    if draw(st.booleans()):
        op = draw(st.sampled_from(("==", "!=") if col == "c" else OPS))
        value, text = draw(literal(col))
        return ("cmp", col, op, value, text)
    pairs = draw(st.lists(literal(col), min_size=1, max_size=3))
    return ("in", col, [v for v, _ in pairs], [t for _, t in pairs], draw(st.booleans()))


trees = st.recursive(
    leaf(),
    lambda sub: st.one_of(
        st.tuples(st.just("not"), sub),
        st.tuples(st.sampled_from(["and", "or"]), sub, sub),
    ),
    max_leaves=8,
)

rows = st.lists(
    st.fixed_dictionaries(
        {
            "x": st.none() | st.integers(-5, 5),
            "y": st.none() | st.integers(-5, 5).map(lambda k: k / 2),
            "c": st.none() | st.sampled_from(LEVELS),
        }
    ),
    max_size=25,
)


@st.composite
def expressions(draw: st.DrawFn) -> tuple[tuple, str]:
    tree = draw(trees)
    return tree, render(tree, draw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), rows)
def test_evaluation_matches_reference(expression: tuple[tuple, str], data: list[dict]) -> None:
    tree, text = expression
    predicate = parse_where(text, SCHEMA)
    mask = predicate.evaluate(table(data))
    assert mask.dtype == bool
    assert mask.tolist() == [ref_eval(tree, row) is True for row in data], text


@settings(max_examples=200, deadline=None)
@given(expressions(), rows)
def test_canonical_text_reparses_to_equal_predicate(
    expression: tuple[tuple, str], data: list[dict]
) -> None:
    predicate = parse_where(expression[1], SCHEMA)
    again = parse_where(str(predicate), SCHEMA)
    assert again == predicate
    assert str(again) == str(predicate)
    assert again.columns == predicate.columns
    t = table(data)
    assert np.array_equal(again.evaluate(t), predicate.evaluate(t))


# --------------------------------------------------------------------------- behaviour


def test_kleene_examples() -> None:
    t = table(
        [
            {"x": None, "y": 1.0, "c": "a"},
            {"x": 3, "y": None, "c": None},
            {"x": -1, "y": 0.5, "c": "b"},
        ]
    )

    def keep(text: str) -> list[bool]:
        return parse_where(text, SCHEMA).evaluate(t).tolist()

    assert keep("x > 0") == [False, True, False]
    assert keep("not x > 0") == [False, False, True]  # not UNKNOWN stays UNKNOWN
    assert keep("x > 0 or x <= 0") == [False, True, True]  # no excluded middle
    assert keep("c == 'a' or x > 0") == [True, True, False]  # UNKNOWN or TRUE = TRUE
    assert keep("c != 'a' and y > 0") == [False, False, True]  # FALSE and ... = FALSE
    assert keep("not (x > 100 and c == 'b')") == [True, True, True]  # FALSE and UNKNOWN = FALSE
    assert keep("c not in ['a']") == [False, False, True]


def test_precedence_and_canonical_form() -> None:
    p = parse_where("x == 1 or x == 2 and not y < 0", SCHEMA)
    assert str(p) == "x == 1 or x == 2 and not y < 0"
    q = parse_where("(x == 1 or x == 2) and not (y < 0 or c in ['a', \"it's\",])", SCHEMA)
    assert str(q) == "(x == 1 or x == 2) and not (y < 0 or c in ['a', 'it\\'s'])"
    assert q.columns == frozenset({"x", "y", "c"})
    assert parse_where("((x >= -1.5e0))", SCHEMA) == parse_where("x >= -1.5", SCHEMA)


def test_no_filter_keeps_every_row() -> None:
    t = table([{"x": None, "y": None, "c": None}, {"x": 1, "y": 1.0, "c": "a"}])
    for text in (None, ""):
        p = parse_where(text, SCHEMA)
        assert p.keeps_all and p.columns == frozenset() and str(p) == ""
        assert p.evaluate(t).tolist() == [True, True]
    assert parse_where(str(parse_where(None, SCHEMA)), SCHEMA).keeps_all


def test_evaluate_on_large_table_is_vectorized() -> None:
    n = 200_000
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 6, n)
    t = Table.from_columns(SCHEMA, {"x": x, "c": np.array(LEVELS)[rng.integers(0, 3, n)]})
    mask = parse_where("x >= 2 and c in ['a', 'b']", SCHEMA).evaluate(t)
    c = t.column("c").values
    assert np.array_equal(mask, (x >= 2) & (c <= 1))


def test_evaluate_needs_the_column() -> None:
    t = Table.from_columns(SCHEMA, {"x": [1]})
    with pytest.raises(DataError, match="'y'"):
        parse_where("y > 0", SCHEMA).evaluate(t)


# --------------------------------------------------------------------------- errors


def error(text: str) -> str:
    with pytest.raises(WhereError) as info:
        parse_where(text, SCHEMA)
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def test_unexpected_token_points_at_column() -> None:
    assert error("x >> 5") == (
        "where 'x >> 5': unexpected '>' at column 4 (expected a number or a quoted string)"
    )


def test_unknown_column_lists_known() -> None:
    message = error("x > 1 and age > 5")
    assert "unknown column 'age' at column 11" in message and "known: x, y, c" in message


def test_category_with_non_string() -> None:
    message = error("c == 1")
    assert "category column 'c'" in message and "non-string 1" in message
    assert "'a', 'b'" in message


def test_category_unknown_level_lists_levels() -> None:
    message = error("c in ['a', 'z']")
    assert "unknown level 'z'" in message and "at column 12" in message
    assert "levels: 'a', 'b', \"it's\"" in message


def test_order_comparison_on_category() -> None:
    message = error("c <= 'b'")
    assert "order comparison '<='" in message and "category column 'c'" in message


@pytest.mark.parametrize("text", ["x == 'a'", "y in [1, '2']"])
def test_numeric_column_with_string(text: str) -> None:
    assert "compared with string" in error(text)


def test_trailing_tokens() -> None:
    message = error("x > 1 y > 2")
    assert "unexpected 'y' at column 7" in message


def test_empty_expression() -> None:
    assert "empty expression" in error("   ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(x > 1", "'(' is never closed at column 1"),
        ("x > 1)", "unmatched ')' at column 6"),
        ("((x > 1) or (y < 2)", "'(' is never closed at column 1"),
        ("()", "unexpected ')' at column 2"),
    ],
)
def test_unbalanced_parentheses(text: str, expected: str) -> None:
    assert expected in error(text)


def test_empty_in_list() -> None:
    assert "empty 'in' list at column 6" in error("x in []")


def test_too_long() -> None:
    text = " or ".join(["x == 1"] * 500)
    assert len(text) > WHERE_CHARS.value
    assert f"{len(text)} characters; the limit is {WHERE_CHARS.value}" in error(text)


@pytest.mark.parametrize("opening", ["(", "not "])
def test_too_deep(opening: str) -> None:
    closing = ")" if opening == "(" else ""
    ok = opening * WHERE_DEPTH.value + "x > 1" + closing * WHERE_DEPTH.value
    parse_where(ok, SCHEMA)
    deep = opening * (WHERE_DEPTH.value + 1) + "x > 1" + closing * (WHERE_DEPTH.value + 1)
    assert f"deeper than {WHERE_DEPTH.value}" in error(deep)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", "unexpected end of expression at column 2"),
        ("1 < x", "unexpected '1' at column 1 (expected a column name)"),
        ("x not == 1", "expected 'in'"),
        ("x in [1 2]", "unexpected '2'"),
        ("c == 'a", "unterminated string at column 6"),
        ("c == 'a\\b'", "unknown escape"),
        ("x == 1e999", "out of range"),
        ("x > 1 AND x < 3", "unexpected 'AND'"),
        ("__import__('os').system('true')", "unknown column '__import__'"),
        ("x == 1; drop table t", "unexpected ';'"),
    ],
)
def test_other_syntax_errors(text: str, expected: str) -> None:
    assert expected in error(text)


def test_not_a_string() -> None:
    with pytest.raises(WhereError, match="must be a string"):
        parse_where(5, SCHEMA)  # type: ignore[arg-type]


def test_float_column_nan_is_unknown() -> None:
    t = Table.from_columns(SCHEMA, {"y": [math.nan, 1.0, None]})
    assert parse_where("y != 0", SCHEMA).evaluate(t).tolist() == [False, True, False]


# --------------------------------------------------------------------------- quoted column names

KEYWORD_SCHEMA = schema_from_mapping(
    {
        "and": {"type": "int", "min": 0, "max": 9},
        "or": {"type": "int", "min": 0, "max": 9},
        "not": {"type": "category", "levels": ["y", "n"]},
        "in": {"type": "float", "min": 0, "max": 1},
        "AND": {"type": "int", "min": 0, "max": 9},  # keywords are lowercase only
        "cafe\u0301": {"type": "int", "min": 0, "max": 9},  # an identifier, but no plain word
    }
)


def keyword_table() -> Table:
    return Table.from_columns(
        KEYWORD_SCHEMA,
        {
            "and": [1, 2, None, 4],
            "or": [5, 0, 1, 2],
            "not": ["y", "n", "y", None],
            "in": [0.5, 0.25, None, 1.0],
            "AND": [3, 3, 4, 4],
            "cafe\u0301": [0, 1, 2, 3],
        },
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("`and` >= 2", [False, True, False, True]),
        ("`or` == 1 or `and` == 1", [True, False, True, False]),
        ("not `not` == 'y'", [False, True, False, False]),
        ("`not` not in ['n'] and `in` in [0.5, 1]", [True, False, False, False]),
        ("`in` < 0.3 or AND == 4 and `and` > 3", [False, True, False, True]),
        ("`AND` == 3 and `cafe\u0301` > 0", [False, True, False, False]),
    ],
)
def test_keyword_columns_are_quoted_with_backticks(text: str, expected: list[bool]) -> None:
    predicate = parse_where(text, KEYWORD_SCHEMA)
    assert predicate.evaluate(keyword_table()).tolist() == expected
    again = parse_where(str(predicate), KEYWORD_SCHEMA)  # canonical text quotes where needed
    assert again == predicate and str(again) == str(predicate)


def test_canonical_text_quotes_only_where_needed() -> None:
    text = "`x` == 1 and `and` in [1] and AND != 2 and `cafe\u0301` == 0 and not `not` == 'n'"
    schema = Schema({**KEYWORD_SCHEMA.columns, "x": Column("x", "int", min=0, max=9)})
    assert str(parse_where(text, schema)) == (
        "x == 1 and `and` in [1] and AND != 2 and `cafe\u0301` == 0 and not `not` == 'n'"
    )
    assert parse_where(text, schema).columns == frozenset({"x", "and", "AND", "cafe\u0301", "not"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("and == 1", "unexpected 'and' at column 1 (expected a column name; "
                     "write column 'and' as `and`)"),
        ("`or` == 1 or in > 0", "unexpected 'in' at column 14 (expected a column name; "
                                "write column 'in' as `in`)"),
        ("`and` == 1 and (", "write column 'and' as `and`"),
        ("`and == 1", "unterminated quoted column name at column 1"),
        ("`` == 1", "empty quoted column name at column 1"),
        ("`nor` == 1", "unknown column 'nor' at column 1"),
        ("`and` == `or`", "unexpected '`or`' at column 10 (expected a number or a quoted"),
        ("`not` == `y`", "expected a number or a quoted string"),
    ],
)
def test_quoted_column_errors(text: str, expected: str) -> None:
    with pytest.raises(WhereError) as info:
        parse_where(text, KEYWORD_SCHEMA)
    assert expected in str(info.value)


def test_backticks_inside_a_string_literal_are_text() -> None:
    schema = schema_from_mapping({"c": {"type": "category", "levels": ["`and`", "b"]}})
    predicate = parse_where("c == '`and`'", schema)
    t = Table.from_columns(schema, {"c": ["`and`", "b"]})
    assert predicate.evaluate(t).tolist() == [True, False]
    assert str(predicate) == "c == '`and`'"


def test_bare_names_still_parse_as_before() -> None:
    assert str(parse_where("`x` > 1 and `c` == 'a'", SCHEMA)) == "x > 1 and c == 'a'"
    assert "write column" not in error("and == 1")  # no hint without a keyword column
