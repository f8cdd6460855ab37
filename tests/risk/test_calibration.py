"""Calibration on the real prices.db: the data loads, the fitted law has fat tails and jumps."""

from __future__ import annotations

import numpy as np
import pytest

from backstop.risk.data import DataMissing, database_path, load_series

try:
    database_path()
    MISSING = None
except DataMissing as exc:  # only the absent file skips; any other error fails
    MISSING = str(exc)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"prices.db absent: {MISSING}")


def test_series_are_real_daily_closes():
    btc = load_series("btc")
    assert btc.log_returns.size > 2000 and btc.exchanges >= 5
    assert btc.days[0] < "2015-01-01" and btc.days[-1] >= "2020-12-01"
    # the March 2020 crash is in the data: a daily log return below -35%
    assert btc.log_returns.min() < -0.35
    assert np.all(btc.days[1:] > btc.days[:-1])


def test_fitted_models_have_fat_tails_jumps_and_stress():
    from backstop.risk.calibration import calibrate

    cal = calibrate()
    for model in (cal.majors, cal.alts):
        assert 2.0 < model.df < 8.0  # far from a normal (df -> infinity), finite variance
        assert 1.0 < model.jump_rate * 365 < 60.0
        assert len(model.stress) == 4 and min(model.stress) < -0.1
    assert cal.alts.scale > cal.majors.scale and min(cal.alts.stress) < min(cal.majors.stress)


def test_sample_matches_fit_scale():
    from backstop.risk.calibration import calibrate

    model = calibrate().majors
    r, gaps = model.sample(np.random.default_rng(1), (2000, 365))
    body = r[gaps == 0]
    # the median absolute body return of a t(df, scale) law
    from scipy import stats

    expected = model.scale * stats.t.ppf(0.75, model.df)
    assert abs(np.median(np.abs(body - model.loc)) / expected - 1) < 0.05
