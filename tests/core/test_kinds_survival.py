"""kaplan_meier and logrank: against lifelines on the pooled rows."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test

from securecalc.core.kinds import KINDS, StudyOptions
from securecalc.core.schema import Column, Schema
from securecalc.errors import ConfigError
from securecalc.synth import generate_site, synth_schema
from tests.core.kinds_engine import STUDY, UNGATED_STUDY, analysis, rel_close, run, tables_from

pytestmark = pytest.mark.timeout(60)

SCHEMA = synth_schema()
GRID = [30, 90, 180, 365, 730, 1095, 1460, 1825, 2555, 3650]


@pytest.fixture(scope="module")
def synth():
    data = [generate_site(i, 600 + 200 * i, np.random.default_rng([19, i])) for i in range(3)]
    pooled = {c: np.concatenate([d[c] for d in data]) for c in data[0]}
    return tables_from(SCHEMA, data), pooled


def check_curve(curve, durations, events, rel=1e-9) -> None:
    fitter = KaplanMeierFitter().fit(durations, events)
    table = fitter.event_table
    event_times = table.index[table["observed"] > 0]
    assert [p["time"] for p in curve] == list(event_times)
    for point in curve:
        t = point["time"]
        assert point["at_risk"] == table.loc[t, "at_risk"]
        assert point["events"] == table.loc[t, "observed"]
        assert rel_close(point["survival"], fitter.survival_function_.loc[t].iloc[0], rel)
        lower, upper = fitter.confidence_interval_.loc[t]
        assert rel_close(point["ci_lower"], lower, rel, 1e-12)
        assert rel_close(point["ci_upper"], upper, rel, 1e-12)


@pytest.mark.parametrize(("engine", "mode"), [("mpc", "exact"), ("ckks", "ckks")])
def test_kaplan_meier_per_group(synth, engine: str, mode: str) -> None:
    tables, pooled = synth
    value, n = run({"kind": "kaplan_meier", "time": "followup_days", "event": "event",
                    "group": "arm"}, SCHEMA, tables, engine=engine, mode=mode, study=UNGATED_STUDY)
    assert n == pooled["arm"].size and set(value["groups"]) == {"a", "b"}
    for level in ("a", "b"):
        rows = pooled["arm"] == level
        check_curve(value["groups"][level], pooled["followup_days"][rows],
                    pooled["event"][rows])


def test_kaplan_meier_on_a_grid_with_ties(synth) -> None:
    tables, pooled = synth
    value, n = run({"kind": "kaplan_meier", "time": "followup_days", "event": "diabetes",
                    "grid": GRID}, SCHEMA, tables, where="age >= 50", study=UNGATED_STUDY)
    rows = pooled["age"] >= 50
    grid = np.array(GRID)
    coarse = grid[np.searchsorted(grid, pooled["followup_days"][rows], side="left")]
    assert n == rows.sum()
    assert all(isinstance(p["time"], int) for p in value["groups"]["all"])
    check_curve(value["groups"]["all"], coarse, pooled["diabetes"][rows] == "yes")


def test_float_time_grid_and_a_group_at_one_site_only() -> None:
    schema = Schema({"t": Column("t", "float", min=0.0, max=10.0),
                     "dead": Column("dead", "int", min=0, max=1),
                     "g": Column("g", "category", levels=("x", "y", "z"))})
    rng = np.random.default_rng(20)
    sites = []
    for i, m in enumerate((120, 90, 60)):
        t = np.round(rng.exponential(3, m).clip(0, 10), 1)  # many ties
        t[rng.random(m) < 0.05] = np.nan
        g = rng.choice(["x", "y", "z"] if i == 1 else ["x", "y"], m)
        sites.append({"t": t, "dead": (rng.random(m) < 0.7).astype(int), "g": g})
    tables = tables_from(schema, sites)
    grid = [0.5, 1, 1.5, 2, 3, 4, 6, 8, 10]
    value, n = run({"kind": "kaplan_meier", "time": "t", "event": "dead", "group": "g",
                    "grid": grid}, schema, tables, study=UNGATED_STUDY)
    t = np.concatenate([s["t"] for s in sites])
    dead = np.concatenate([s["dead"] for s in sites])
    g = np.concatenate([s["g"] for s in sites])
    keep = ~np.isnan(t)
    coarse = np.asarray(grid)[np.searchsorted(grid, t[keep], side="left")]
    assert n == keep.sum()
    for level in ("x", "y", "z"):
        rows = g[keep] == level
        check_curve(value["groups"][level], coarse[rows], dead[keep][rows])
    assert value["groups"]["z"][0]["at_risk"] == np.sum(g[keep] == "z")
    # logrank over the three groups (z at one site only) and over two
    value, n = run({"kind": "logrank", "time": "t", "event": "dead", "group": "g",
                    "grid": grid}, schema, tables, study=UNGATED_STUDY)
    test = multivariate_logrank_test(coarse, g[keep], dead[keep])
    assert value["df"] == 2 and rel_close(value["statistic"], test.test_statistic)
    assert abs(value["p_value"] - test.p_value) <= 1e-6


@pytest.mark.parametrize(("engine", "mode"), [("mpc", "exact"), ("ckks", "ckks")])
def test_logrank_two_groups(synth, engine: str, mode: str) -> None:
    tables, pooled = synth
    value, n = run({"kind": "logrank", "time": "followup_days", "event": "event",
                    "group": "arm"}, SCHEMA, tables, engine=engine, mode=mode, study=UNGATED_STUDY)
    a, b = pooled["arm"] == "a", pooled["arm"] == "b"
    time, event = pooled["followup_days"], pooled["event"]
    test = logrank_test(time[a], time[b], event[a], event[b])
    assert n == time.size and value["df"] == 1
    assert rel_close(value["statistic"], test.test_statistic)
    assert abs(value["p_value"] - test.p_value) <= 1e-6
    assert value["observed"] == {"a": int(event[a].sum()), "b": int(event[b].sum())}
    assert rel_close(sum(value["expected"].values()), event.sum())


def test_logrank_category_event_and_filters(synth) -> None:
    tables, pooled = synth
    value, n = run({"kind": "logrank", "time": "followup_days", "event": "diabetes",
                    "group": "sex", "grid": GRID}, SCHEMA, tables, where="arm == 'b'",
                   study=UNGATED_STUDY)
    rows = pooled["arm"] == "b"
    coarse = np.array(GRID)[np.searchsorted(GRID, pooled["followup_days"][rows], side="left")]
    test = multivariate_logrank_test(coarse, pooled["sex"][rows], pooled["diabetes"][rows] ==
                                     "yes")
    assert rel_close(value["statistic"], test.test_statistic)
    assert abs(value["p_value"] - test.p_value) <= 1e-6
    # one group left: no test
    assert run({"kind": "logrank", "time": "followup_days", "event": "event", "group": "sex"},
               SCHEMA, tables, where="sex == 'F'", study=UNGATED_STUDY)[0] is None


def test_ties_everywhere_and_everyone_dies() -> None:
    schema = Schema({"t": Column("t", "int", min=1, max=5),
                     "e": Column("e", "int", min=0, max=1),
                     "g": Column("g", "category", levels=("p", "q"))})
    sites = [{"t": [1, 1, 2, 2, 2, 3], "e": [1, 0, 1, 1, 0, 1], "g": ["p", "q", "p", "q", "p",
                                                                       "q"]},
             {"t": [2, 3, 3, 5], "e": [1, 1, 1, 1], "g": ["p", "p", "q", "q"]},
             {"t": [5, 5, None], "e": [1, 1, 1], "g": ["p", "q", "p"]}]
    tables = tables_from(schema, sites)
    value, n = run({"kind": "kaplan_meier", "time": "t", "event": "e"}, schema, tables,
                   study=UNGATED_STUDY)
    t = np.array([1, 1, 2, 2, 2, 3, 2, 3, 3, 5, 5, 5])
    e = np.array([1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    g = np.array(["p", "q", "p", "q", "p", "q", "p", "p", "q", "q", "p", "q"])
    assert n == 12
    check_curve(value["groups"]["all"], t, e)
    last = value["groups"]["all"][-1]
    assert last["survival"] == 0 and last["ci_lower"] == last["ci_upper"] == 0
    value, _ = run({"kind": "logrank", "time": "t", "event": "e", "group": "g"}, schema, tables,
                   study=UNGATED_STUDY)
    test = logrank_test(t[g == "p"], t[g == "q"], e[g == "p"], e[g == "q"])
    assert rel_close(value["statistic"], test.test_statistic)
    assert abs(value["p_value"] - test.p_value) <= 1e-6


def test_empty_cohort(synth) -> None:
    tables, _ = synth
    value, n = run({"kind": "kaplan_meier", "time": "followup_days", "event": "event",
                    "group": "arm"}, SCHEMA, tables, where="age > 200", study=UNGATED_STUDY)
    assert value == {"groups": {"a": [], "b": []}} and n == 0
    assert run({"kind": "logrank", "time": "followup_days", "event": "event", "group": "arm"},
               SCHEMA, tables, where="age > 200", study=UNGATED_STUDY) == (None, 0)


def test_plan_shape() -> None:
    a = analysis({"kind": "logrank", "time": "followup_days", "event": "event",
                  "group": "arm"}, SCHEMA)
    plan = KINDS["logrank"].plan(a, SCHEMA, "mpc", STUDY)
    # events and removals per group and day, then the count of each of the two groups
    assert plan.width == 2 * 2 * 3650 + 2 and all(plan.integral) and not plan.suppress_below
    assert KINDS["logrank"].cohort_slots(a, SCHEMA, plan) == (14600, 14601)
    assert KINDS["logrank"].cell_slots(a, SCHEMA, plan) == tuple(range(14600))
    a = analysis({"kind": "kaplan_meier", "time": "followup_days", "event": "event",
                  "grid": GRID}, SCHEMA)
    plan = KINDS["kaplan_meier"].plan(a, SCHEMA, "ckks", STUDY)
    assert plan.width == 21 and KINDS["kaplan_meier"].cohort_slots(a, SCHEMA, plan) == (20,)


def test_gates_withhold_small_steps_and_groups(synth) -> None:
    tables, pooled = synth
    daily = {"kind": "kaplan_meier", "time": "followup_days", "event": "event", "group": "arm"}
    assert run(daily, SCHEMA, tables) == (None, None)  # days with 1 to 4 events
    # 4 events in b at 3650: no group is released, so a's n beside a count cannot give b's
    assert run({**daily, "grid": GRID}, SCHEMA, tables) == (None, None)
    value, n = run({**daily, "grid": [90, 180, 365, 730, 1095, 1460, 1825, 3650]}, SCHEMA,
                   tables)
    assert n == pooled["arm"].size
    for level in ("a", "b"):
        assert all(p["events"] >= 5 for p in value["groups"][level])
    # a group of fewer than min_cohort patients withholds every curve, and the test
    sizes = {level: int(np.sum(pooled["sex"] == level)) for level in ("F", "M")}
    assert sizes["M"] < sizes["F"]
    value, n = run({**daily, "group": "sex", "grid": [90, 180, 365, 730, 1095, 1460, 1825,
                                                      3650]},
                   SCHEMA, tables, study=StudyOptions(min_cohort=sizes["M"] + 1))
    assert (value, n) == (None, None)
    assert run({"kind": "logrank", "time": "followup_days", "event": "event", "group": "arm",
                "grid": GRID}, SCHEMA, tables, study=StudyOptions(min_cohort=2000)) == \
        (None, None)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"kind": "kaplan_meier", "time": "bmi", "event": "event"}, "grid",
         "needs a grid"),
        ({"kind": "kaplan_meier", "time": "age", "event": "sbp"}, "event", "0/1"),
        ({"kind": "kaplan_meier", "time": "age", "event": "event", "grid": [10, 50]}, "grid",
         "must reach the max of 'age' (95)"),
        ({"kind": "kaplan_meier", "time": "age", "event": "event", "grid": [50, 10, 95]},
         "grid", "increasing"),
        ({"kind": "kaplan_meier", "time": "age", "event": "event", "group": "bmi"}, "group",
         "category"),
        ({"kind": "logrank", "time": "age", "event": "event"}, "group", "needs a group"),
        ({"kind": "logrank", "time": "sex", "event": "event", "group": "arm"}, "time",
         "numeric"),
    ],
)
def test_parse_errors(raw, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        analysis(raw, SCHEMA)
    assert info.value.field == f"analysis[0].{field}"
    assert words in str(info.value)


def test_wide_int_time_needs_a_grid() -> None:
    schema = Schema({"t": Column("t", "int", min=0, max=200_000),
                     "e": Column("e", "int", min=0, max=1),
                     "g": Column("g", "category", levels=("only",))})
    with pytest.raises(ConfigError, match="200001 time points; the limit is 100000 .*set a "
                                          "coarser grid") as info:
        analysis({"kind": "kaplan_meier", "time": "t", "event": "e"}, schema)
    assert info.value.field == "analysis[0].time"
    analysis({"kind": "kaplan_meier", "time": "t", "event": "e", "grid": [1000, 200_000]},
             schema)
    with pytest.raises(ConfigError, match="at least two levels"):
        analysis({"kind": "logrank", "time": "t", "event": "e", "group": "g",
                  "grid": [200_000]}, schema)
