"""The limits table: every limit accepts its value and refuses one more, naming itself.

Oversized lists are refused before anything is built from them: the functions that would
expand them are never called, and refusing a 10^7-point grid allocates next to nothing.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from securecalc.core import limits
from securecalc.core.analyses import Analysis
from securecalc.core.config import Party, load_study_config
from securecalc.core.job import Job
from securecalc.core.kinds import KINDS, order, survival
from securecalc.core.kinds.base import StudyOptions
from securecalc.core.limits import Limit
from securecalc.core.schema import Column, Schema, column_from_mapping, schema_from_mapping
from securecalc.core.study_model import analysis_from_mapping, check_job, parse_analyses
from securecalc.core.where import parse_where
from securecalc.engines.ckks.layout import CkksParams, Layout
from securecalc.errors import ConfigError, WhereError
from securecalc.studyfolder import study_toml
from securecalc.transport.channel import channel_options
from securecalc.transport.codec import job_from_proto, job_to_proto
from securecalc.transport.proto import study_pb2
from securecalc.transport.server import server_options

pytestmark = pytest.mark.timeout(60)

README = Path(__file__).resolve().parents[2] / "README.md"
SCHEMA = Schema({"x": Column("x", "int", min=0, max=100),
                 "t": Column("t", "int", min=0, max=99_999),
                 "e": Column("e", "int", min=0, max=1),
                 "g": Column("g", "category", levels=("a", "b", "c"))})


def refused(limit: Limit, count: int, call: Any, *args: Any, **kwargs: Any) -> ConfigError:
    """``call`` raises a ConfigError naming ``count`` and ``limit``."""
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    assert limit.message(count) in str(info.value)
    return info.value


def parse(raw: dict[str, Any], schema: Schema = SCHEMA) -> Analysis:
    return analysis_from_mapping({"id": "a", **raw}, index=3, schema=schema)


def numeric_schema(n: int) -> Schema:
    return Schema({f"c{i}": Column(f"c{i}", "float", min=0.0, max=1.0) for i in range(n)})


def test_the_readme_holds_the_table() -> None:
    assert limits.markdown_table() in README.read_text()
    assert len({limit.what for limit in limits.LIMITS}) == len(limits.LIMITS)


def test_a_refusal_names_the_field_the_count_and_the_limit() -> None:
    error = refused(limits.PROBS, 100_000, parse,
                    {"kind": "quantiles", "column": "x", "probs": [0.5] * 100_000})
    assert error.field == "analysis[3].probs"
    assert str(error) == ("field 'analysis[3].probs': 100000 probabilities; the limit is 64 "
                          "(limits table in the README)")


# --------------------------------------------------------------------------- the study file


def study_text(parties: int = 3, analyses: int = 1, pad: int = 0) -> str:
    text = study_toml("s", "mpc", [(f"h{i}", f"127.0.0.1:{5000 + i}") for i in range(parties)],
                      Path("pki"), '[schema.x]\ntype = "int"\nmin = 0\nmax = 9\n',
                      "".join(f'[[analysis]]\nid = "n{i}"\nkind = "count"\n'
                              for i in range(analyses)))
    return text + "#" * max(0, pad - len(text.encode()) - 1) + "\n" if pad else text


def test_study_file_size(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(study_text(pad=limits.STUDY_FILE.value))
    assert path.stat().st_size == limits.STUDY_FILE.value
    load_study_config(path, insecure=True)
    path.write_text(study_text(pad=limits.STUDY_FILE.value + 1))
    error = refused(limits.STUDY_FILE, limits.STUDY_FILE.value + 1, load_study_config, path,
                    insecure=True)
    assert error.path == str(path)


def test_an_oversized_study_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_bytes(b"not = [toml" * 300_000)
    refused(limits.STUDY_FILE, len(path.read_bytes()), load_study_config, path, insecure=True)


def test_parties_in_a_study_file(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(study_text(parties=limits.PARTIES.value))
    assert len(load_study_config(path, insecure=True).parties) == limits.PARTIES.value
    path.write_text(study_text(parties=limits.PARTIES.value + 1))
    assert refused(limits.PARTIES, limits.PARTIES.value + 1, load_study_config, path,
                   insecure=True).field == "party"


def test_analyses_per_study() -> None:
    counts = [{"id": f"n{i}", "kind": "count"} for i in range(limits.ANALYSES.value + 1)]
    assert len(parse_analyses(counts[:-1], SCHEMA)) == limits.ANALYSES.value
    assert refused(limits.ANALYSES, len(counts), parse_analyses, counts,
                   SCHEMA).field == "analysis"


def test_columns_per_schema() -> None:
    raw = {f"c{i}": {"type": "int", "min": 0, "max": 1}
           for i in range(limits.SCHEMA_COLUMNS.value + 1)}
    schema_from_mapping(dict(list(raw.items())[:-1]))
    assert refused(limits.SCHEMA_COLUMNS, len(raw), schema_from_mapping,
                   raw).field == "schema"


def test_levels_per_category_column() -> None:
    levels = [f"l{i}" for i in range(limits.LEVELS.value + 1)]
    column_from_mapping("g", {"type": "category", "levels": levels[:-1]})
    assert refused(limits.LEVELS, len(levels), column_from_mapping, "g",
                   {"type": "category", "levels": levels}).field == "schema.g.levels"


# --------------------------------------------------------------------------- analyses


def test_probabilities_per_order_statistic() -> None:
    probs = [i / 1000 for i in range(limits.PROBS.value + 1)]
    parse({"kind": "quantiles", "column": "x", "probs": probs[:-1]})
    refused(limits.PROBS, len(probs), parse, {"kind": "quantiles", "column": "x",
                                              "probs": probs})


def test_histogram_edges() -> None:
    edges = list(range(limits.EDGES.value + 1))
    parse({"kind": "histogram", "column": "x", "edges": edges[:-1]})
    assert refused(limits.EDGES, len(edges), parse, {"kind": "histogram", "column": "x",
                                                     "edges": edges}).field == "analysis[3].edges"


def test_survival_time_points() -> None:
    points = limits.SURVIVAL_POINTS.value
    wide = Schema({**SCHEMA.columns, "t": Column("t", "int", min=1, max=points + 1)})
    parse({"kind": "kaplan_meier", "time": "t", "event": "e"})  # 0..99999: at the limit
    assert refused(limits.SURVIVAL_POINTS, points + 1, parse,
                   {"kind": "kaplan_meier", "time": "t", "event": "e"}, wide
                   ).field == "analysis[3].time"
    grid = list(range(points + 1))
    parse({"kind": "kaplan_meier", "time": "t", "event": "e", "grid": grid[:-1]})
    refused(limits.SURVIVAL_POINTS, points + 1, parse,
            {"kind": "kaplan_meier", "time": "t", "event": "e", "grid": grid})


def test_counts_per_survival_analysis_span_its_groups() -> None:
    per_group = limits.COUNT_CELLS.value // 3  # g has 3 levels
    for points, ok in ((per_group, True), (per_group + 1, False)):
        schema = Schema({**SCHEMA.columns, "t": Column("t", "int", min=1, max=points)})
        raw = {"kind": "logrank", "time": "t", "event": "e", "group": "g"}
        if ok:
            parse(raw, schema)
        else:
            refused(limits.COUNT_CELLS, 3 * points, parse, raw, schema)


def test_counts_per_crosstab() -> None:
    def schema(rows: int) -> Schema:
        return Schema({"r": Column("r", "category", levels=tuple(map(str, range(rows)))),
                       "c": Column("c", "category", levels=tuple(map(str, range(512))))})

    parse({"kind": "crosstab", "row": "r", "col": "c"}, schema(512))
    refused(limits.COUNT_CELLS, 513 * 512, parse, {"kind": "crosstab", "row": "r", "col": "c"},
            schema(513))


def test_ckks_order_statistic_grid() -> None:
    study = StudyOptions()
    for points, ok in ((limits.CKKS_GRID_POINTS.value, True),
                       (limits.CKKS_GRID_POINTS.value + 1, False)):
        schema = Schema({"x": Column("x", "int", min=0, max=points - 1)})
        a = parse({"kind": "median", "column": "x"}, schema)
        if ok:
            KINDS["median"].plan(a, schema, "ckks", study)
        else:
            refused(limits.CKKS_GRID_POINTS, points, KINDS["median"].plan, a, schema, "ckks",
                    study)
        KINDS["median"].plan(a, schema, "mpc", study)  # MPC searches any grid


def test_a_ckks_grid_is_refused_when_the_study_is_read_and_when_the_job_arrives(
        tmp_path: Path) -> None:
    points = limits.CKKS_GRID_POINTS.value + 1
    text = study_toml("s", "ckks", [("h0", "127.0.0.1:5000"), ("h1", "127.0.0.1:5001")],
                      Path("pki"), f'[schema.x]\ntype = "int"\nmin = 1\nmax = {points}\n',
                      '[[analysis]]\nid = "m"\nkind = "median"\ncolumn = "x"\n',
                      compute=("compute", "127.0.0.1:5002"))
    path = tmp_path / "study.toml"
    path.write_text(text)
    assert refused(limits.CKKS_GRID_POINTS, points, load_study_config, path,
                   insecure=True).field == "analysis[0]"
    schema = Schema({"x": Column("x", "int", min=1, max=points)})
    median = Job("s", "j", job().parties, schema, (Analysis("m", "median", "x"),))
    check_job(median, "mpc")
    refused(limits.CKKS_GRID_POINTS, points, check_job, median, "ckks")


def test_regression_predictors_count_category_levels() -> None:
    n = limits.PREDICTORS.value
    schema = numeric_schema(n + 1)
    names = list(schema.names())
    parse({"kind": "linreg", "y": names[-1], "x": names[:-1]}, schema)
    refused(limits.PREDICTORS, n + 1, parse, {"kind": "linreg", "y": "y", "x": names},
            Schema({**schema.columns, "y": Column("y", "float", min=0.0, max=1.0)}))
    levels = tuple(map(str, range(n + 2)))  # n + 1 indicators
    wide = Schema({**schema.columns, "g": Column("g", "category", levels=levels)})
    assert refused(limits.PREDICTORS, n + 1, parse, {"kind": "logreg", "y": "e", "x": ["g"]},
                   Schema({**wide.columns, "e": SCHEMA["e"]})).field == "analysis[3].x"


@pytest.mark.parametrize("kind", ["correlation", "covariance"])
def test_correlation_columns(kind: str) -> None:
    n = limits.CORRELATION_COLUMNS.value
    schema = numeric_schema(n + 1)
    parse({"kind": kind, "columns": schema.names()[:-1]}, schema)
    refused(limits.CORRELATION_COLUMNS, n + 1, parse, {"kind": kind, "columns": schema.names()},
            schema)


# --------------------------------------------------------------------------- filters


def test_where_length() -> None:
    chars = limits.WHERE_CHARS.value
    parse_where("x == 1".ljust(chars), SCHEMA)
    with pytest.raises(WhereError) as info:
        parse_where("x == 1".ljust(chars + 1), SCHEMA)
    assert limits.WHERE_CHARS.message(chars + 1) in str(info.value)


def test_where_comparisons() -> None:
    n = limits.WHERE_COMPARISONS.value
    parse_where(" or ".join(["x == 1"] * n), SCHEMA)
    with pytest.raises(WhereError, match=f"more than {n} comparisons"):
        parse_where(" or ".join(["x == 1"] * (n + 1)), SCHEMA)


def test_in_list_length() -> None:
    n = limits.IN_LIST.value
    parse_where(f"x in [{','.join(['1'] * n)}]", SCHEMA)
    with pytest.raises(WhereError, match=f"more than {n} values"):
        parse_where(f"x not in [{','.join(['1'] * (n + 1))}]", SCHEMA)


def test_a_filter_of_an_analysis_names_its_field() -> None:
    text = " or ".join(["x == 1"] * (limits.WHERE_COMPARISONS.value + 1))
    with pytest.raises(WhereError) as info:
        parse_analyses([{"id": "a", "kind": "count", "where": text}], SCHEMA)
    assert info.value.field == "analysis[0].where"


# --------------------------------------------------------------------------- before building


def test_oversized_lists_are_refused_before_they_are_expanded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an oversized list was expanded")

    monkeypatch.setattr(order, "number_list", never)
    monkeypatch.setattr(survival, "number_list", never)
    refused(limits.PROBS, 100_000, parse,
            {"kind": "quantiles", "column": "x", "probs": [0.5] * 100_000})
    refused(limits.SURVIVAL_POINTS, 10**6, parse,
            {"kind": "kaplan_meier", "time": "t", "event": "e", "grid": [1.0] * 10**6})


def test_refusing_a_grid_of_ten_million_points_allocates_next_to_nothing() -> None:
    raw = {"id": "km", "kind": "kaplan_meier", "time": "t", "event": "e", "grid": [1.0] * 10**7}
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="10000000 time points"):
            analysis_from_mapping(raw, index=0, schema=SCHEMA)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # a list of 10^7 floats would take 80 MB


# --------------------------------------------------------------------------- off the wire


def job(parties: int = 3, analyses: int = 1) -> Job:
    return Job(study="s", job_id="j", parties=tuple(Party(f"h{i}", f"127.0.0.1:{5000 + i}")
                                                    for i in range(parties)),
               schema=SCHEMA,
               analyses=tuple(Analysis(f"n{i}", "count") for i in range(analyses)))


def test_a_job_off_the_wire_is_counted_before_it_is_decoded() -> None:
    spec = job_to_proto(job(analyses=limits.ANALYSES.value))
    assert len(job_from_proto(spec, "mpc").analyses) == limits.ANALYSES.value
    spec.analyses.append(study_pb2.AnalysisSpec(id="bad", kind="count", table_json="{not json"))
    refused(limits.ANALYSES, limits.ANALYSES.value + 1, job_from_proto, spec, "mpc")
    refused(limits.PARTIES, limits.PARTIES.value + 1, job_from_proto,
            job_to_proto(job(parties=limits.PARTIES.value + 1)), "mpc")
    spec = job_to_proto(job())
    spec.schema.extend(study_pb2.ColumnSpec(name=f"c{i}", type="int", min=0, max=1)
                       for i in range(limits.SCHEMA_COLUMNS.value))
    refused(limits.SCHEMA_COLUMNS, limits.SCHEMA_COLUMNS.value + 4, job_from_proto, spec, "mpc")


def test_job_check_counts_too() -> None:
    check_job(job(parties=limits.PARTIES.value, analyses=limits.ANALYSES.value), "mpc")
    refused(limits.PARTIES, limits.PARTIES.value + 1, check_job,
            job(parties=limits.PARTIES.value + 1), "mpc")
    refused(limits.ANALYSES, limits.ANALYSES.value + 1,
            check_job, job(analyses=limits.ANALYSES.value + 1), "mpc")


# --------------------------------------------------------------------------- messages


def test_every_server_and_channel_sets_the_message_limits() -> None:
    for options in (server_options(limits.GRPC_MESSAGE.value), channel_options(None),
                    channel_options("hospital-a")):
        values = dict(options)
        assert values["grpc.max_send_message_length"] == limits.GRPC_MESSAGE.value
        assert values["grpc.max_receive_message_length"] == limits.GRPC_MESSAGE.value


def test_ckks_ciphertexts_per_job() -> None:
    slots = CkksParams().slots
    assert Layout(limits.CKKS_CIPHERTEXTS.value * slots).n_ciphertexts == \
        limits.CKKS_CIPHERTEXTS.value
    refused(limits.CKKS_CIPHERTEXTS, limits.CKKS_CIPHERTEXTS.value + 1, Layout,
            limits.CKKS_CIPHERTEXTS.value * slots + 1)


def test_counts_per_study_add_up_over_its_analyses() -> None:
    per = limits.COUNT_CELLS.value // 3  # four logranks over 3 groups reach the study limit
    schema = Schema({**SCHEMA.columns, "t": Column("t", "int", min=1, max=per)})
    n = limits.STUDY_COUNTS.value // (3 * per)
    raws = [{"id": f"s{i}", "kind": "logrank", "time": "t", "event": "e", "group": "g"}
            for i in range(n + 1)]
    parse_analyses(raws[:-1], schema)
    extra = {"id": "h", "kind": "histogram", "column": "x",
             "edges": list(range(limits.STUDY_COUNTS.value - 3 * per * n + 2))}
    refused(limits.STUDY_COUNTS, limits.STUDY_COUNTS.value + 1, parse_analyses,
            [*raws[:-1], extra], schema)
    counted = job(analyses=0)
    refused(limits.STUDY_COUNTS, 3 * per * (n + 1), check_job, Job(
        counted.study, counted.job_id, counted.parties, schema,
        tuple(parse_analyses(raws[:-1], schema)) + (parse(raws[-1], schema),)), "mpc")


def test_names_and_ids(tmp_path: Path) -> None:
    n = limits.NAME_CHARS.value
    column_from_mapping("c" * n, {"type": "category", "levels": ["l" * n]})
    refused(limits.NAME_CHARS, n + 1, column_from_mapping, "c" * (n + 1),
            {"type": "int", "min": 0, "max": 1})
    assert refused(limits.NAME_CHARS, n + 1, column_from_mapping, "g",
                   {"type": "category", "levels": ["a", "l" * (n + 1)]}
                   ).field == "schema.g.levels"
    parse({"id": "i" * n, "kind": "count"})
    assert refused(limits.NAME_CHARS, n + 1, parse_analyses,
                   [{"id": "i" * (n + 1), "kind": "count"}], SCHEMA).field == "analysis[0].id"
    assert refused(limits.NAME_CHARS, 10**6, parse, {"kind": "k" * 10**6}
                   ).field == "analysis[3].kind"
    for field, value in (("study", "s" * (n + 1)), ("job_id", "j" * (n + 1))):
        long = dataclasses.replace(job(), **{field: value})
        assert refused(limits.NAME_CHARS, n + 1, check_job, long, "mpc").field == field
    far = dataclasses.replace(job(), parties=(*job().parties[:2], Party("h", "a" * (n + 1))))
    assert refused(limits.NAME_CHARS, n + 1, check_job, far, "mpc").field == "parties[2].address"
    path = tmp_path / "study.toml"
    path.write_text(study_text().replace('name = "s"', f'name = "{"s" * (n + 1)}"'))
    assert refused(limits.NAME_CHARS, n + 1, load_study_config, path,
                   insecure=True).field == "study.name"
