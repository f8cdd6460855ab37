"""Price paths of the stress simulator: exact gaps, reproducible GBM, crash shapes."""

import math

import pytest

from backstop.sim.paths import CRASHES, PricePath, crash, gap, gbm, make_path


@pytest.mark.parametrize("size", [0.2, 0.4, 0.6])
def test_a_gap_is_exactly_one_oracle_update(size):
    path = gap(size, before=3, after=4)
    falls = [b / a - 1 for a, b in zip(path.majors, path.majors[1:])]
    moved = [f for f in falls if f != 0]
    assert moved == [pytest.approx(-size, abs=1e-12)]
    assert falls.index(moved[0]) == 2  # the update right after the 3 flat ones
    assert path.worst_step == pytest.approx(size)
    assert path.gap == size


def test_a_gap_with_drift_keeps_sliding_after_the_gap():
    path = gap(0.4, before=2, after=3, drift=-0.01)
    assert path.worst_step == pytest.approx(0.4)
    assert path.majors[-1] == pytest.approx(0.6 * 0.99**3)
    assert len(path) == 2 + 4


def test_gap_alts_can_fall_further_and_stay_positive():
    path = gap(0.6, alt_beta=2.0)
    assert min(path.alts) == pytest.approx(0.05)  # capped at -95%
    assert min(path.majors) == pytest.approx(0.4)


def test_gap_rejects_nonsense():
    with pytest.raises(ValueError):
        gap(1.0)
    with pytest.raises(ValueError):
        gap(0.2, drift=-0.9)


def test_gbm_is_reproducible_by_seed():
    a, b, c = gbm(200, seed=7), gbm(200, seed=7), gbm(200, seed=8)
    assert a.majors == b.majors and a.alts == b.alts
    assert a.majors != c.majors
    assert len(a) == 200 and a.majors[0] == 1.0
    assert all(x > 0 for x in a.majors + a.alts)


def test_gbm_alts_are_the_majors_shocks_scaled_by_beta():
    path = gbm(50, seed=3, alt_beta=2.0)
    for m, a in zip(path.majors, path.alts):
        assert math.log(a) == pytest.approx(2.0 * math.log(m))


def test_gbm_volatility_is_about_sigma():
    path = gbm(20_000, seed=1, sigma=0.8, jump_rate=0.0, dt=60)
    logs = [math.log(b / a) for a, b in zip(path.majors, path.majors[1:])]
    mean = sum(logs) / len(logs)
    std = math.sqrt(sum((x - mean) ** 2 for x in logs) / len(logs))
    annual = std * math.sqrt(365 * 86400 / 60)
    assert annual == pytest.approx(0.8, rel=0.05)


def test_oct_2025_shape_matches_the_public_figures():
    path = crash("oct-2025")
    assert path.dt == 60
    minute = {int(k * path.dt / 60): k for k in range(len(path))}
    assert path.alts[minute[5]] <= 0.5  # alts -50% or worse within about 5 minutes
    assert 0.85 <= path.majors[minute[20]] <= 0.92  # BTC about -11% in about 20 minutes
    assert path.alts[-1] > min(path.alts)  # then the bounce


def test_every_crash_falls_and_starts_at_one():
    for name in CRASHES:
        path = crash(name)
        assert isinstance(path, PricePath)
        assert path.majors[0] == path.alts[0] == 1.0
        assert path.trough < 0.95
        assert min(path.alts) <= path.trough  # alts fall at least as far
    assert min(crash("luna-2022").alts) <= 0.02
    assert crash("may-2021").trough == pytest.approx(0.70)


def test_make_path_parses_specs():
    assert make_path("gap:0.4").gap == 0.4
    assert make_path("gbm:30", seed=2).majors == gbm(30, seed=2).majors
    assert make_path("ftx-2022").name == "ftx-2022"
    with pytest.raises(ValueError):
        make_path("nope")
