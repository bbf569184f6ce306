"""Spare MPC workers: started ahead with the imports done, one job each, gone with the pool."""

from __future__ import annotations

import time

import pytest

from securecalc.engines.mpc import MpcJob, SumStep
from securecalc.engines.mpc.launcher import SparePool
from securecalc.engines.mpc.local import run_local_outcomes

NAMES = ("hospital-a", "hospital-b", "hospital-c")


def jobs(job_id: str) -> list[MpcJob]:
    return [MpcJob(job_id, p, NAMES, (SumStep("s", (p + 1, -p), 10),)) for p in range(3)]


@pytest.mark.timeout(90)
def test_jobs_run_in_the_spares_and_new_spares_follow() -> None:
    pools = [SparePool() for _ in NAMES]
    try:
        for pool in pools:
            pool.fill()
        spares = [pool._spare[0] for pool in pools]  # type: ignore[index]
        for round_ in range(2):
            outcomes = run_local_outcomes(jobs(f"job-{round_}"), pools=pools)
            for o in outcomes:
                assert o.error is None and o.result is not None
                assert o.result.steps[0].totals == (6, -3)
            for proc in spares:  # the jobs ran in the spares, which exit after one job
                proc.join(10)
                assert proc.exitcode == 0
            deadline = time.monotonic() + 30
            while any(p._spare is None for p in pools) and time.monotonic() < deadline:
                time.sleep(0.05)  # the next spares are started in the background
            spares = [p._spare[0] for p in pools]  # type: ignore[index]
            assert all(proc.is_alive() for proc in spares)
    finally:
        for pool in pools:
            pool.close()
    assert all(p._spare is None for p in pools)


@pytest.mark.timeout(60)
def test_a_dead_spare_is_replaced_by_a_fresh_worker() -> None:
    pools = [SparePool() for _ in NAMES]
    try:
        for pool in pools:
            pool.fill()
        victim = pools[1]._spare  # type: ignore[union-attr]
        assert victim is not None
        victim[0].kill()
        victim[0].join(5)
        outcomes = run_local_outcomes(jobs("after-death"), pools=pools)
        assert all(o.error is None for o in outcomes)
    finally:
        for pool in pools:
            pool.close()


def test_a_closed_pool_stops_its_spare() -> None:
    pool = SparePool()
    pool.fill()
    spare = pool._spare
    assert spare is not None
    pool.close()
    assert spare[0].exitcode is not None
    pool.fill()  # a closed pool starts nothing
    assert pool._spare is None
