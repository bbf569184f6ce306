"""Loading CSV and Parquet files into validated columns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from securecalc.core.schema import Column, Schema
from securecalc.core.table import ColumnData, Table, load_table
from securecalc.errors import ConfigError, DataError

pytestmark = pytest.mark.timeout(60)

SCHEMA = Schema(
    {
        "age": Column("age", "int", min=18, max=95),
        "bmi": Column("bmi", "float", min=15.0, max=60.0),
        "arm": Column("arm", "category", levels=("a", "b")),
    }
)
GOOD_CSV = 'id,age,bmi,arm,notes\n1,50,22.5,a,x\n2,,NaN,b,\n3,NA,nan,NA,"multi\nline"\n4,95,60,,z\n'


def write(tmp_path: Path, text: str, name: str = "site.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def data_error(path: Path, columns: list[str] | None = None, schema: Schema = SCHEMA) -> str:
    with pytest.raises(DataError) as info:
        load_table(path, schema, columns)
    message = str(info.value)
    assert str(path) in message
    return message


def test_csv_values_and_missing(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, GOOD_CSV), SCHEMA)
    assert table.n_rows == 4 and table.names == ("age", "bmi", "arm")
    age, bmi, arm = (table.column(n) for n in table.names)
    assert age.values.dtype == np.int64 and age.values.tolist() == [50, 0, 0, 95]
    assert age.missing.tolist() == [False, True, True, False]
    assert bmi.values.dtype == np.float64 and bmi.values[0] == 22.5 and bmi.values[3] == 60.0
    assert bmi.missing.tolist() == [False, True, True, False] and np.isnan(bmi.values[1:3]).all()
    assert arm.values.tolist() == [0, 1, -1, -1] and arm.missing.tolist() == [0, 0, 1, 1]


def test_columns_are_read_only(tmp_path: Path) -> None:
    column = load_table(write(tmp_path, GOOD_CSV), SCHEMA).column("age")
    with pytest.raises(ValueError):
        column.values[0] = 1
    with pytest.raises(ValueError):
        column.missing[0] = True


def test_extra_columns_are_never_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, "age,junk,junk,\n20,not a number,x,\n")
    table = load_table(path, SCHEMA, ["age"])
    assert table.names == ("age",) and table.column("age").values.tolist() == [20]
    with pytest.raises(DataError, match="no column 'junk'"):
        table.column("junk")


def test_whitespace_around_cells_is_ignored(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "age,bmi,arm\n 20 , 21.5,b \n"), SCHEMA)
    assert table.column("age").values[0] == 20 and table.column("arm").values[0] == 1


def test_whole_number_decimals_are_ints(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "age\n20.0\n2.1e1\n"), SCHEMA, ["age"])
    assert table.column("age").values.tolist() == [20, 21]


def test_na_is_a_level_when_declared(tmp_path: Path) -> None:
    schema = Schema({"g": Column("g", "category", levels=("NA", "EU"))})
    table = load_table(write(tmp_path, "g\nNA\nEU\n\n"), schema)
    assert table.column("g").values.tolist() == [0, 1]  # the blank line is skipped


def test_header_only_is_an_empty_table(tmp_path: Path) -> None:
    for path in (write(tmp_path, "age,bmi,arm\n"), write(tmp_path, "age,bmi,arm", "b.csv")):
        table = load_table(path, SCHEMA)
        assert table.n_rows == 0
        assert table.column("bmi").values.dtype == np.float64
        assert len(table.column("arm").missing) == 0


def test_parquet_round_trip(tmp_path: Path) -> None:
    source = Table.from_columns(
        SCHEMA,
        {"age": [18, None, 95], "bmi": [15.0, 33.3, None], "arm": ["b", None, "a"]},
    )
    arrow = pa.table(
        {
            "age": pa.array([18, None, 95], pa.int16()),
            "bmi": pa.array([15.0, 33.3, math.nan]),  # NaN is missing in a float column
            "arm": pa.array(["b", None, "a"]).dictionary_encode(),
            "other": pa.array([b"x", b"y", b"z"]),
        }
    )
    for name in ("site.parquet", "site.pq"):
        pq.write_table(arrow, tmp_path / name)
        loaded = load_table(tmp_path / name, SCHEMA)
        for column in SCHEMA.names():
            expected, got = source.column(column), loaded.column(column)
            assert np.array_equal(got.values, expected.values, equal_nan=True)
            assert np.array_equal(got.missing, expected.missing)


def test_csv_round_trip_matches_from_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 500
    age = rng.integers(18, 96, n)
    bmi = np.round(rng.uniform(15, 60, n), 1)
    arm = np.array(["a", "b"])[rng.integers(0, 2, n)]
    lines = ["age,bmi,arm"] + [f"{a},{b},{c}" for a, b, c in zip(age, bmi, arm, strict=True)]
    loaded = load_table(write(tmp_path, "\n".join(lines) + "\n"), SCHEMA)
    built = Table.from_columns(SCHEMA, {"age": age, "bmi": bmi, "arm": arm})
    for column in SCHEMA.names():
        assert np.array_equal(loaded.column(column).values, built.column(column).values)


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in data_error(tmp_path / "absent.csv")


def test_unsupported_suffix(tmp_path: Path) -> None:
    assert "unsupported file type '.xlsx'" in data_error(write(tmp_path, "age\n1\n", "s.xlsx"))


def test_unreadable_files(tmp_path: Path) -> None:
    assert "cannot read as Parquet" in data_error(write(tmp_path, "not parquet", "s.parquet"))
    bad_utf8 = tmp_path / "latin.csv"
    bad_utf8.write_bytes(b"age,arm\n20,\xe9\n")
    assert "line 2 is not valid UTF-8" in data_error(bad_utf8, ["arm"])
    assert "empty" in data_error(write(tmp_path, "", "empty.csv"))
    assert "cannot read as CSV" in data_error(write(tmp_path, "age,bmi,arm\n1,2\n", "ragged.csv"))


def test_absent_column_lists_file_columns(tmp_path: Path) -> None:
    message = data_error(write(tmp_path, "age,BMI,arm\n20,22,a\n"))
    assert "column 'bmi' is required but absent" in message
    assert "'age', 'BMI', 'arm'" in message


def test_unknown_requested_column_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown column 'height'"):
        load_table(write(tmp_path, GOOD_CSV), SCHEMA, ["height"])


def test_duplicate_header(tmp_path: Path) -> None:
    message = data_error(write(tmp_path, "age,bmi,arm,age\n1,2,a,3\n"))
    assert "column 'age' appears 2 times" in message


def bad_cell(tmp_path: Path, column: str, cells: list[str]) -> str:
    """Error message for a CSV whose ``column`` holds ``cells`` (other columns valid)."""
    good = {"age": "40", "bmi": "25.0", "arm": "a"}
    rows = [",".join(cell if name == column else good[name] for name in good) for cell in cells]
    path = write(tmp_path, "age,bmi,arm\n" + "\n".join(rows) + "\n")
    message = data_error(path)
    assert f"column {column!r}" in message
    return message


def test_non_numeric_cell(tmp_path: Path) -> None:
    message = bad_cell(tmp_path, "bmi", ["22", "", "abc", "1,5"[:1], "n/a"])
    assert "row 3 (line 4): 'abc' is not a number; 2 rows affected" in message


def test_non_integer_in_int_column(tmp_path: Path) -> None:
    message = bad_cell(tmp_path, "age", ["40", "12.5"])
    assert "row 2 (line 3): '12.5' is not a whole number" in message
    assert "1 row affected" in message


@pytest.mark.parametrize("literal", ["NaN", "nan", "-nan"])
def test_nan_in_int_column(tmp_path: Path, literal: str) -> None:
    message = bad_cell(tmp_path, "age", ["40", "", literal])
    assert f"row 3 (line 4): '{literal}': NaN is not allowed in int column age" in message


@pytest.mark.parametrize(("column", "literal"), [("age", "inf"), ("bmi", "-Infinity")])
def test_infinity(tmp_path: Path, column: str, literal: str) -> None:
    message = bad_cell(tmp_path, column, [literal])
    assert f"row 1 (line 2): '{literal}': infinity is not allowed" in message


def test_value_out_of_bounds(tmp_path: Path) -> None:
    message = bad_cell(tmp_path, "age", ["40", "17", "96", "95"])
    assert "row 2 (line 3): '17' is outside the declared range [18, 95]; 2 rows affected" in message
    message = bad_cell(tmp_path, "bmi", ["60.01"])
    assert "'60.01' is outside the declared range [15, 60]" in message


def test_unknown_level_lists_allowed(tmp_path: Path) -> None:
    message = bad_cell(tmp_path, "arm", ["a", "A", "c", "b"])
    assert "row 2 (line 3): 'A' is not a level of category column arm" in message
    assert "(allowed: 'a', 'b'); 2 rows affected" in message


def test_line_numbers_count_blank_lines_and_multiline_cells(tmp_path: Path) -> None:
    text = 'age,note\n20,"two\nlines"\n\n30,x\n17,y\n'
    message = data_error(write(tmp_path, text), ["age"])
    assert "row 3 (line 6): '17'" in message


def test_parquet_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"age": ["40"], "bmi": [20.0], "arm": [1]}), path)
    message = data_error(path, ["age"])
    assert "column 'age' has Parquet type string, expected numbers" in message
    message = data_error(path, ["arm"])
    assert "column 'arm' has Parquet type int64, expected strings" in message


def test_parquet_value_errors_name_row(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"age": [40.0, math.nan, 41.5], "arm": ["a", "b", "x"]}), path)
    assert "row 2: nan: NaN is not allowed in int column age" in data_error(path, ["age"])
    assert "row 3: 'x' is not a level" in data_error(path, ["arm"])


# --------------------------------------------------------------------------- from_columns


def test_from_columns_validates() -> None:
    table = Table.from_columns(SCHEMA, {"age": np.array([18, 95]), "arm": ["a", None]})
    assert table.column("arm").missing.tolist() == [False, True]
    with pytest.raises(DataError, match="row 2: 96 is outside"):
        Table.from_columns(SCHEMA, {"age": [18, 96]})
    with pytest.raises(DataError, match="row 1: '20' is not a number"):
        Table.from_columns(SCHEMA, {"age": ["20"]})
    with pytest.raises(DataError, match="row 2: 1 is not a string"):
        Table.from_columns(SCHEMA, {"arm": ["a", 1]})
    with pytest.raises(DataError, match="differ in length"):
        Table.from_columns(SCHEMA, {"age": [20], "arm": []})
    with pytest.raises(DataError, match="'height' is not declared"):
        Table.from_columns(SCHEMA, {"height": [1]})
    with pytest.raises(DataError, match="NaN is not allowed in int column age"):
        Table.from_columns(SCHEMA, {"age": np.array([20.0, np.nan])})


def test_table_checks_lengths() -> None:
    data = ColumnData(np.zeros(2, np.int64), np.zeros(2, bool))
    with pytest.raises(DataError, match="has 2 rows, expected 3"):
        Table(SCHEMA, {"age": data}, 3)


def test_levels_with_braces_in_messages() -> None:
    schema = Schema({"g": Column("g", "category", levels=("{value}", "{0}"))})
    with pytest.raises(DataError, match=r"row 2: '\{1\}' is not a level .* '\{value\}', '\{0\}'"):
        Table.from_columns(schema, {"g": ["{0}", "{1}"]})
