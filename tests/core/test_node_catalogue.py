"""A node's catalogue: the coverage check, the remapping of its table, its TOML form."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecalc.core.catalogue import (
    catalogue_from_mapping,
    catalogue_toml,
    check_coverage,
    coverage_problem,
    study_table,
)
from securecalc.core.schema import Column, Schema, schema_from_mapping
from securecalc.core.table import Table
from securecalc.errors import ConfigError, PolicyError
from securecalc.synth import SYNTH_CATALOGUE_TOML, synth_schema

pytestmark = pytest.mark.timeout(60)

CATALOGUE = catalogue_from_mapping(tomllib.loads(SYNTH_CATALOGUE_TOML)["catalogue"])


def numeric(kind: str, lo: float, hi: float, name: str = "x") -> Column:
    return Column(name, kind, min=lo, max=hi)  # type: ignore[arg-type]


def category(levels: list[str], name: str = "x") -> Column:
    return Column(name, "category", levels=tuple(levels))


def refusal(schema: Schema, columns: list[str]) -> str:
    with pytest.raises(PolicyError) as info:
        check_coverage("hospital-b", CATALOGUE, schema, columns)
    return str(info.value)


def with_column(column: Column) -> Schema:
    return Schema({**synth_schema().columns, column.name: column})


def test_the_synthetic_schema_covers_the_synthetic_catalogue() -> None:
    check_coverage("hospital-b", CATALOGUE, synth_schema(), synth_schema().names())


@pytest.mark.parametrize(("column", "message"), [
    (numeric("float", 20.0, 60.0, "bmi"),
     "hospital-b offers column 'bmi' with bounds [15, 60]; the study declares [20, 60]: a "
     "study must restate the catalogue's bounds"),
    (numeric("float", 15.0, 57.5, "bmi"),
     "hospital-b offers column 'bmi' with bounds [15, 60]; the study declares [15, 57.5]: a "
     "study must restate the catalogue's bounds"),
    (numeric("int", 15, 60, "bmi"),
     "hospital-b offers column 'bmi' as float with bounds [15, 60]; the study declares it int"),
    (category(["F"], "sex"),
     "hospital-b offers column 'sex' with levels [\"F\", \"M\"]; the study declares [\"F\"]: "
     "a study must restate the catalogue's levels (in any order)"),
    (numeric("float", 0.0, 100.0, "bmi"),
     "hospital-b offers column 'bmi' with bounds [15, 60]; the study declares [0, 100]: a "
     "study must restate the catalogue's bounds"),
    (category(["U", "M", "F"], "sex"),
     "hospital-b offers column 'sex' with levels [\"F\", \"M\"]; the study declares "
     "[\"U\", \"M\", \"F\"]: a study must restate the catalogue's levels (in any order)"),
    (numeric("int", 100, 250, "height"),
     "hospital-b does not offer column 'height' (its catalogue: age, sex, bmi, sbp, "
     "cholesterol, diabetes, arm, followup_days, event)"),
])
def test_refusals_quote_the_published_catalogue_only(column: Column, message: str) -> None:
    assert refusal(with_column(column), ["age", column.name]) == message


def test_a_restated_catalogue_with_levels_in_another_order_is_covered() -> None:
    schema = Schema({**synth_schema().columns, "sex": category(["M", "F"], "sex")})
    check_coverage("hospital-b", CATALOGUE, schema, ["bmi", "sex"])


def test_an_empty_catalogue_covers_only_reads_of_no_column() -> None:
    check_coverage("h", Schema(), synth_schema(), [])
    with pytest.raises(PolicyError, match="does not offer column 'age' .its catalogue: no"):
        check_coverage("h", Schema(), synth_schema(), ["age"])


bounds = st.integers(-1000, 1000)


@settings(deadline=None)  # a shared machine: time is no property here
@given(bounds, bounds, bounds, bounds)
def test_only_the_catalogue_restated_is_covered_and_its_rows_then_fit_the_study(
        a: int, b: int, c: int, d: int) -> None:
    offered = numeric("int", min(a, b), max(a, b))
    asked = numeric("int", min(c, d), max(c, d))
    restated = asked.min == offered.min and asked.max == offered.max
    assert (coverage_problem(offered, asked) is None) == restated
    if restated:  # both ends of the catalogue's range validate under the study's schema
        values = [int(offered.min), int(offered.max)]  # type: ignore[arg-type]
        table = Table.from_columns(Schema({"x": offered}), {"x": values})
        remapped = study_table(table, Schema({"x": asked}), ["x"])
        Table.from_columns(Schema({"x": asked}), {"x": remapped.column("x").values.tolist()})


@settings(deadline=None)  # a shared machine: time is no property here
@given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
       st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True),
       st.data())
def test_category_codes_follow_the_study_level_order(offered: list[str], extra: list[str],
                                                     data: st.DataObject) -> None:
    asked = data.draw(st.permutations(list(dict.fromkeys(offered + extra))))
    rows = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(offered)), max_size=30))
    table = Table.from_columns(Schema({"x": category(offered)}), {"x": rows})
    remapped = study_table(table, Schema({"x": category(asked)}), ["x"]).column("x")
    got = [None if m else asked[v] for v, m in zip(remapped.values, remapped.missing,
                                                    strict=True)]
    assert got == rows
    assert (remapped.values[remapped.missing] == -1).all()
    assert not remapped.values.flags.writeable


def test_study_table_keeps_numeric_columns_and_only_the_columns_asked_for() -> None:
    table = Table.from_columns(CATALOGUE, {"age": [18, 95], "bmi": [15.0, None], "sex": ["M", "F"],
                                           "sbp": [80, 220], "cholesterol": [2.0, 12.0],
                                           "diabetes": ["no", "yes"], "arm": ["a", "b"],
                                           "followup_days": [1, 3650], "event": [0, 1]})
    schema = with_column(numeric("float", 0.0, 100.0, "bmi"))
    out = study_table(table, schema, ["bmi", "age", "bmi"])
    assert out.names == ("bmi", "age") and out.n_rows == 2
    assert out.column("age") is table.column("age")
    assert out.schema["bmi"].max == 100.0


@settings(deadline=None)  # a shared machine: time is no property here
@given(st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    st.one_of(
        st.tuples(st.integers(-2**52, 2**52), st.integers(-2**52, 2**52)).map(
            lambda t: {"type": "int", "min": min(t), "max": max(t)}),
        st.tuples(st.floats(-1e15, 1e15), st.floats(-1e15, 1e15)).map(
            lambda t: {"type": "float", "min": min(t), "max": max(t)}),
        st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4, unique=True).map(
            lambda levels: {"type": "category", "levels": levels}),
    ), max_size=5))
def test_catalogue_toml_round_trips(raw: dict[str, dict[str, object]]) -> None:
    catalogue = catalogue_from_mapping(raw)
    text = catalogue_toml(catalogue)
    assert schema_from_mapping(tomllib.loads(text).get("schema", {})) == catalogue
    as_catalogue = tomllib.loads(catalogue_toml(catalogue, "catalogue")).get("catalogue", {})
    assert catalogue_from_mapping(as_catalogue) == catalogue


def test_catalogue_errors_name_the_catalogue_field() -> None:
    with pytest.raises(ConfigError) as info:
        catalogue_from_mapping({"bmi": {"type": "float", "min": 1.0}}, path="node.toml")
    assert info.value.field == "catalogue.bmi.max"
