"""Declared analyses: analysis_from_mapping and check_analyses."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecalc.core.analyses import Analysis
from securecalc.core.kinds import KINDS
from securecalc.core.schema import Column, Schema
from securecalc.core.study_model import analysis_from_mapping, check_analyses
from securecalc.errors import ConfigError, WhereError

pytestmark = pytest.mark.timeout(60)

SCHEMA = Schema(
    {
        "age": Column("age", "int", min=18, max=95),
        "bmi": Column("bmi", "float", min=15.0, max=60.0),
        "arm": Column("arm", "category", levels=("a", "b")),
    }
)
NUMERIC_KINDS = ("sum", "mean", "variance", "std")
PATH = "/studies/s.toml"


def from_mapping_error(raw: Any, field: str, *, index: int = 0, path: str | None = PATH) -> str:
    with pytest.raises(ConfigError) as info:
        analysis_from_mapping(raw, index=index, path=path)
    assert type(info.value) is ConfigError
    assert info.value.field == field and info.value.path == path
    message = str(info.value)
    assert repr(field) in message
    if path is not None:
        assert path in message
    return message


def check_error(analyses: list[Analysis], field: str, *, kind: type[ConfigError] = ConfigError,
                schema: Schema = SCHEMA) -> str:
    with pytest.raises(kind) as info:
        check_analyses(analyses, schema, path=PATH)
    assert type(info.value) is kind
    assert info.value.field == field and info.value.path == PATH
    message = str(info.value)
    assert PATH in message and repr(field) in message
    return message


# --------------------------------------------------------------------------- analysis_from_mapping


def test_kinds_table() -> None:
    moments = {"count": False, "sum": True, "mean": True, "variance": True, "std": True}
    assert {name: "column" in KINDS[name].required for name in moments} == moments


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"id": "n", "kind": "count"}, Analysis("n", "count")),
        ({"id": "n", "kind": "count", "column": "arm"}, Analysis("n", "count", "arm")),
        ({"id": "m", "kind": "mean", "column": "age", "where": "arm == 'a'"},
         Analysis("m", "mean", "age", "arm == 'a'")),
        *[({"id": k, "kind": k, "column": "bmi"}, Analysis(k, k, "bmi")) for k in NUMERIC_KINDS],
    ],
)
def test_from_mapping(raw: dict[str, str], expected: Analysis) -> None:
    assert analysis_from_mapping(raw, index=0) == expected


def test_analysis_is_frozen_and_lists_its_columns() -> None:
    # the columns are recorded when the table is validated (the record knows no kinds)
    analysis = analysis_from_mapping({"id": "m", "kind": "mean", "column": "age"}, index=0,
                                     schema=SCHEMA)
    assert analysis == Analysis("m", "mean", "age")
    assert analysis.columns == ("age",)
    assert analysis_from_mapping({"id": "n", "kind": "count"}, index=0,
                                 schema=SCHEMA).columns == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.kind = "sum"  # type: ignore[misc]


@pytest.mark.parametrize("raw", [None, "mean", ["id", "kind"], 3])
def test_not_a_table(raw: Any) -> None:
    assert "must be a table" in from_mapping_error(raw, "analysis[4]", index=4)


def test_unknown_key() -> None:
    message = from_mapping_error({"id": "a", "kind": "count", "filter": "x"}, "analysis[0].filter")
    assert "unknown key" in message and "column, epsilon, id, kind, where" in message


@pytest.mark.parametrize("key", ["id", "kind", "column", "where"])
@pytest.mark.parametrize("value", ["", "   ", 3, 1.5, True, ["a"], {"a": 1}])
def test_fields_must_be_non_empty_strings(key: str, value: Any) -> None:
    raw = {"id": "a", "kind": "mean", "column": "age", "where": "age > 3", key: value}
    message = from_mapping_error(raw, f"analysis[2].{key}", index=2)
    assert "non-empty string" in message and repr(value) in message


def test_id_is_required() -> None:
    assert "is required" in from_mapping_error({"kind": "count"}, "analysis[0].id")


@pytest.mark.parametrize("kind", [None, "mode", "Mean", "COUNT", "var"])
def test_unknown_kind(kind: str | None) -> None:
    raw = {"id": "a", "column": "age"} | ({"kind": kind} if kind else {})
    message = from_mapping_error(raw, "analysis[0].kind")
    assert f"unknown kind {kind!r}" in message
    assert "count, sum, mean, variance, std" in message


@pytest.mark.parametrize("kind", NUMERIC_KINDS)
def test_numeric_kind_needs_a_column(kind: str) -> None:
    message = from_mapping_error({"id": "a", "kind": kind}, "analysis[0].column")
    assert f"kind {kind!r} needs a column" in message


def test_without_path_the_message_names_the_field() -> None:
    message = from_mapping_error({"id": "a", "kind": "sum"}, "analysis[0].column", path=None)
    assert message.startswith("field 'analysis[0].column': ")


@given(
    ident=st.text(min_size=1, max_size=20).filter(str.strip),
    kind=st.sampled_from(sorted(k for k in KINDS if KINDS[k].required <= {"column"})),
    column=st.sampled_from(["age", "bmi"]),
    where=st.none() | st.sampled_from(["age > 30", "arm in ['a']", "not (bmi < 20)"]),
)
@settings(max_examples=50, deadline=None)
def test_valid_mappings_round_trip(ident: str, kind: str, column: str, where: str | None) -> None:
    raw = {"id": ident, "kind": kind, "column": column} | ({"where": where} if where else {})
    analysis = analysis_from_mapping(raw, index=0)
    assert analysis == Analysis(ident, kind, column, where)
    check_analyses([analysis], SCHEMA)


# --------------------------------------------------------------------------- check_analyses


def test_valid_set_passes() -> None:
    check_analyses(
        [
            Analysis("n", "count"),
            Analysis("n_arm", "count", "arm", "arm == 'b'"),
            Analysis("n_age", "count", "age"),
            *[Analysis(k, k, "age", "bmi >= 20 and arm != 'a'") for k in NUMERIC_KINDS],
            *[Analysis(f"{k}_bmi", k, "bmi") for k in NUMERIC_KINDS],
        ],
        SCHEMA,
        path=PATH,
    )
    check_analyses([], SCHEMA)


def test_duplicate_ids() -> None:
    analyses = [Analysis("a", "count"), Analysis("b", "count"), Analysis("a", "mean", "age")]
    assert "duplicate analysis id 'a'" in check_error(analyses, "analysis[2].id")


def test_unknown_column_lists_known_columns() -> None:
    message = check_error([Analysis("n", "count"), Analysis("m", "mean", "weight")],
                          "analysis[1].column")
    assert "unknown column 'weight'" in message and "schema declares: age, bmi, arm" in message


def test_unknown_column_with_empty_schema() -> None:
    message = check_error([Analysis("m", "count", "age")], "analysis[0].column", schema=Schema())
    assert "schema declares: none" in message


@pytest.mark.parametrize("kind", NUMERIC_KINDS)
def test_numeric_kind_on_category_column(kind: str) -> None:
    message = check_error([Analysis("x", kind, "arm")], "analysis[0].column")
    assert "needs a numeric column" in message and "'arm' is a category" in message


def test_analyses_built_in_code_are_checked_too() -> None:
    # An Analysis constructed directly never went through analysis_from_mapping.
    assert "unknown kind 'mode'" in check_error([Analysis("x", "mode", "age")],
                                                  "analysis[0].kind")
    assert "needs a column" in check_error([Analysis("x", "std")], "analysis[0].column")


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("age >", "unexpected end of expression"),
        ("weight > 3", "unknown column 'weight'"),
        ("arm == 'c'", "unknown level 'c'"),
        ("arm >= 'a'", "order comparison"),
        ("age > 3 and", "unexpected end"),
        ("bmi == 'x'", "compared with string"),
        ("   ", "empty expression"),
        ("age > 3)", "unmatched ')'"),
    ],
)
def test_malformed_where(where: str, words: str) -> None:
    analyses = [Analysis("n", "count"), Analysis("w", "mean", "age", where)]
    message = check_error(analyses, "analysis[1].where", kind=WhereError)
    assert words in message and repr(where) in message
    assert "column " in message  # points at the position
