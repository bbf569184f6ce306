"""Twenty parties (without PRSS) complete a gated mean and variance and a median, with real
MPyC workers, against numpy on the pooled data."""

from __future__ import annotations

import numpy as np
import pytest

from securecalc.engines.mpc import GatedSumStep, MpcJob, SearchStep, run_local
from securecalc.engines.mpc.worker import uses_prss

M = 20
BOUND = 10**9


@pytest.mark.timeout(300)
def test_twenty_parties_mean_variance_and_median() -> None:
    assert uses_prss(3, 1) and uses_prss(5, 2) and not uses_prss(M, (M - 1) // 2)
    rng = np.random.default_rng(20)
    values = [rng.integers(0, 1000, int(rng.integers(1, 40))) for _ in range(M)]
    names = tuple(f"site-{p:02d}" for p in range(M))
    jobs = []
    for p, v in enumerate(values):
        moments = (len(v), int(v.sum()), int((v * v).sum()))
        jobs.append(MpcJob("many", p, names, (
            GatedSumStep("moments", moments, BOUND, (0,), 10, 0),
            SearchStep("median", np.sort(v).astype(np.int64), 1000, (0.25, 0.5, 0.75),
                       min_n=10),
        ), job_timeout=240))
    results = run_local(jobs, timeout=280)
    pooled = np.concatenate(values)
    n, s, ss = len(pooled), int(pooled.sum()), int((pooled * pooled).sum())
    want_q = tuple(int(q) for q in np.quantile(pooled, (0.25, 0.5, 0.75),
                                                method="inverted_cdf"))
    for r in results:
        assert r.totals("moments") == (1, n, s, ss)
        assert r.totals("median") == (n, *want_q)
    mean, var = s / n, (ss - s * s / n) / (n - 1)
    assert mean == pytest.approx(pooled.mean(), rel=1e-12)
    assert var == pytest.approx(pooled.var(ddof=1), rel=1e-9)
    steps = {s.name: s for s in results[0].steps}
    print(f"\n{M} parties: gated moments {steps['moments'].rounds} rounds, "
          f"median {steps['median'].rounds} rounds, {steps['median'].seconds:.2f} s")
