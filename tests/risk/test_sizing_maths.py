"""ES / VaR / ruin maths on cases with known answers, CI coverage, and the sparse sampler against the dense one."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from backstop.risk.returns import ReturnModel
from backstop.risk.sizing import (
    Book, clopper_pearson, expected_shortfall, round_up, tail_count, thresholds, value_at_risk, bankruptcy_moves,
    candidate_days,
)


def test_es_of_a_discrete_uniform_is_the_tail_mean():
    losses = np.random.default_rng(0).permutation(np.arange(1000.0))
    assert tail_count(1000, 0.999) == 1 and tail_count(1000, 0.99) == 10
    assert expected_shortfall(losses, 0.99) == np.mean(np.arange(990.0, 1000.0)) == 994.5
    assert value_at_risk(losses, 0.99) == 990.0


def test_es_of_an_exponential_is_analytic():
    """Exp(rate 1): VaR_a = -ln(1 - a), ES_a = VaR_a + 1 (memoryless)."""
    losses = np.random.default_rng(1).exponential(1.0, 2_000_000)
    alpha = 0.999
    var = -math.log(1 - alpha)
    assert abs(value_at_risk(losses, alpha) - var) < 0.1
    assert abs(expected_shortfall(losses, alpha) - (var + 1)) < 0.1


def test_clopper_pearson_known_values_and_coverage():
    lo, hi = clopper_pearson(0, 100)
    assert lo == 0.0 and abs(hi - (1 - 0.025 ** (1 / 100))) < 1e-12
    rng = np.random.default_rng(2)
    p, n = 0.003, 2000
    hits = rng.binomial(n, p, 2000)
    covered = np.mean([lo <= p <= hi for lo, hi in (clopper_pearson(int(h), n) for h in hits)])
    assert covered >= 0.95  # exact intervals are conservative
    lo, hi = clopper_pearson(30, 10_000)
    assert lo < 0.003 < hi and hi - lo < 0.0025


def test_round_up_is_never_below():
    for x in (1.0, 17_303_969.5, 999.0, 10**13 + 1.0):
        assert round_up(x) >= x and round_up(x) < x * 1.11
    assert round_up(17_303_969) == 18_000_000 and round_up(0) == 0


def test_thresholds_are_where_equity_meets_mm():
    book = Book(open_interest=1.0)
    mm = 0.05
    lev = np.tile(book.leverages, 2)
    side = np.repeat([1.0, -1.0], len(book.leverages))
    for moves, target in ((thresholds(book, mm), "mm"), (bankruptcy_moves(book), "zero")):
        price = np.exp(-side * moves)
        eq = 1 / lev + side * (price - 1)
        assert np.allclose(eq, mm * price if target == "mm" else 0.0)


def test_sparse_candidate_days_match_the_dense_law():
    """The sizing draws only tail/jump/stress days; their count and tail mass must match ReturnModel.sample."""
    model = ReturnModel(3.5, 0.0, 0.03, 10 / 365, np.array([-0.2, 0.15, -0.3]), (-0.3, -0.5))
    floor = 0.1
    rng = np.random.default_rng(3)
    path, _, body, gap = candidate_days(rng, model, 20_000, floor)
    dense, _ = model.sample(np.random.default_rng(4), (20_000, 365))
    tail_sparse = np.mean(np.abs(body + gap) >= floor) * path.size / (20_000 * 365)
    tail_dense = np.mean(np.abs(dense) >= floor)
    assert abs(tail_sparse / tail_dense - 1) < 0.03
    q = 2 * stats.t.sf(floor / 0.03, 3.5)
    assert path.size / (20_000 * 365) > q


def test_tail_quantile_table_matches_scipy():
    from backstop.risk.sizing import tail_quantiles

    rng = np.random.default_rng(5)
    tail = 0.02
    u = np.concatenate([rng.uniform(0, tail, 5000), 1 - rng.uniform(0, tail, 5000), [1e-10, 1 - 1e-10]])
    exact = stats.t.ppf(u, 3.7)
    assert np.max(np.abs(tail_quantiles(u, 3.7, tail) / exact - 1)) < 1e-5
