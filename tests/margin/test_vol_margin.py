"""RiskParams: margin that follows realized volatility, a forecaster that can only raise it, and the
rate limit that keeps an account meeting IM before a poke out of liquidation after it."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from ape import chain
from hypothesis import HealthCheck, given, settings, strategies as st
from ape.exceptions import ContractLogicError

from backstop.client.actors import fund, set_price, trade
from backstop.client.deploy import deploy_risk_params, deploy_system, load_system
from backstop.core.config import SystemConfig
from backstop.keeper import Keeper
from backstop.core.units import WAD, quote, wad
from backstop.core import volatility as vol
from backstop.keeper.forecaster import garch_forecast, oracle_returns, push_if_higher

PARAMS = vol.VolMarginParams()


@pytest.fixture
def risk(system, deployer):
    return deploy_risk_params(system, deployer, {"ETH-PERP": PARAMS})


@pytest.fixture
def forecaster(risk, deployer, keeper2):
    risk.grantRole(risk.FORECASTER_ROLE(), keeper2, sender=deployer)
    return keeper2


def _round(system, deployer, price: float, at: int) -> None:
    """An ETH-PERP oracle round at `at` (the test chain's clock is frozen: it moves only here)."""
    chain.pending_timestamp = at
    set_price(system, "ETH-PERP", wad(price), deployer)


def _now() -> int:
    return int(chain.blocks.head.timestamp)


def _ratios(system, market_id):
    p = system.lens.market(market_id)
    return int(p.im_ratio), int(p.mm_ratio)


# ---------------------------------------------------------------- the estimate


def test_first_poke_starts_from_the_initial_variance(system, risk, deployer, eth):
    _round(system, deployer, 3000, _now() + 60)
    risk.poke(eth.id, sender=deployer)
    state = risk.risk_state(eth.id)
    assert int(state.variance) == PARAMS.as_tuple()[-1] and int(state.stressed) == int(state.variance)
    assert int(state.price) == wad(3000)


def test_ewma_follows_the_python_mirror_over_irregular_rounds(system, risk, deployer, eth):
    rng = random.Random(11)
    price, t = 3000.0, _now() + 60
    _round(system, deployer, price, t)
    risk.poke(eth.id, sender=deployer)
    expected = PARAMS.as_tuple()[-1] / WAD
    for _ in range(12):
        dt = rng.choice([30, 60, 600, 3_599])
        new = round(price * math.exp(rng.gauss(0, 0.02)), 2)
        t += dt
        _round(system, deployer, new, t)
        risk.poke(eth.id, sender=deployer)
        onchain_price = int(risk.risk_state(eth.id).price)
        expected = vol.ewma(expected, math.log(onchain_price / wad(price)), dt, PARAMS.tau)
        assert int(risk.risk_state(eth.id).variance) / WAD == pytest.approx(expected, rel=1e-6)
        price = onchain_price / WAD


def test_a_stale_or_duplicate_round_is_refused(system, risk, deployer, eth):
    _round(system, deployer, 3000, _now() + 60)
    risk.poke(eth.id, sender=deployer)
    with pytest.raises(ContractLogicError, match="risk: stale or duplicate round"):
        risk.poke(eth.id, sender=deployer)


def test_an_unconfigured_market_cannot_be_poked(system, risk, deployer, btc):
    with pytest.raises(ContractLogicError, match="risk: market not configured"):
        risk.poke(btc.id, sender=deployer)


def test_margin_rises_with_volatility_and_reaches_the_vault(system, risk, deployer, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    calm = _ratios(system, eth.id)
    assert calm[1] == int(PARAMS.floor * WAD) and calm[0] == calm[1] * 2  # 80%/yr over 30 min: the floor
    price = 3000.0
    for k in range(1, 7):  # a storm: +-15% every hour (RiskMetrics' 16-day time constant reacts in hours)
        price *= 1.15 if k % 2 else 0.87
        t += PARAMS.min_interval
        _round(system, deployer, price, t)
        risk.poke(eth.id, sender=deployer)
    im, mm = _ratios(system, eth.id)
    assert mm > calm[1] and im == mm * 2
    assert mm <= int(PARAMS.cap * WAD)
    p = system.lens.market(eth.id)  # every other parameter is kept
    assert int(p.taker_fee_bps) == 5 and int(p.segment) == eth.segment


def test_stressed_observations_keep_a_quarter_of_the_weight(system, risk, deployer, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    t += 600
    _round(system, deployer, 2400, t)  # -22% in one round
    risk.poke(eth.id, sender=deployer)
    stressed = int(risk.risk_state(eth.id).stressed)
    for _ in range(20):  # then a long calm
        t += 86_400
        _round(system, deployer, 2400, t)
        risk.poke(eth.id, sender=deployer)
    state = risk.risk_state(eth.id)
    assert int(state.variance) < stressed * 0.3  # 0.94 per day for 20 days
    blended = (3 * int(state.variance) + stressed) // 4
    assert int(risk.effective_variance(eth.id)) == blended


# ---------------------------------------------------------------- the rate limit


def test_one_change_per_interval(system, risk, deployer, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    before = _ratios(system, eth.id)
    t += 60
    _round(system, deployer, 2400, t)
    risk.poke(eth.id, sender=deployer)
    assert _ratios(system, eth.id) == before  # within min_interval of the first change
    assert int(risk.target_mm_ratio(eth.id)) > before[1]


def test_an_account_meeting_im_before_a_poke_is_not_liquidatable_after(system, risk, deployer, forecaster,
                                                                      maker, trader, eth, majors):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    im, _ = _ratios(system, eth.id)
    fund(system, maker, majors, quote(1_000_000, system.decimals))
    # the trader opens as much as its IM allows: equity ~= IM
    fund(system, trader, majors, quote(6_000, system.decimals))
    size = wad(6_000 * 0.999 / 3000) * WAD // im
    trade(system, trader, maker, eth.id, size, wad(3000))
    h = system.vault.account_health(trader, majors)
    assert int(h.equity) >= int(h.im)
    # a hostile forecast asks for the cap at once
    risk.push_forecast(eth.id, 10**18, 86_400, sender=forecaster)
    t += PARAMS.min_interval
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    new_im, new_mm = _ratios(system, eth.id)
    assert new_mm == im  # capped at the IM in force before the poke, not at the target
    assert int(risk.target_mm_ratio(eth.id)) == int(PARAMS.cap * WAD)
    h = system.vault.account_health(trader, majors)
    assert int(h.equity) >= int(h.mm)  # not liquidatable


# ---------------------------------------------------------------- the forecaster


def test_a_forecast_only_raises_and_decays(system, risk, deployer, forecaster, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    realized = int(risk.effective_variance(eth.id))
    risk.push_forecast(eth.id, realized // 10, 86_400, sender=forecaster)
    assert int(risk.effective_variance(eth.id)) == realized  # a lower forecast does nothing
    risk.push_forecast(eth.id, realized * 9, 86_400, sender=forecaster)
    start = _now()
    assert int(risk.effective_variance(eth.id)) == realized * 9
    chain.mine(timestamp=start + 43_200)
    assert int(risk.effective_variance(eth.id)) == pytest.approx(realized * 5, rel=1e-9)
    chain.mine(timestamp=start + 86_400)
    assert int(risk.effective_variance(eth.id)) == realized


def test_only_the_forecaster_role_pushes(risk, attacker, eth):
    with pytest.raises(ContractLogicError, match="access_control: account is missing role"):
        risk.push_forecast(eth.id, 10**10, 3_600, sender=attacker)


@pytest.mark.parametrize("duration", [0, PARAMS.max_forecast_duration + 1])
def test_forecast_duration_is_bounded(risk, forecaster, eth, duration):
    with pytest.raises(ContractLogicError, match="risk: forecast duration"):
        risk.push_forecast(eth.id, 10**10, duration, sender=forecaster)


def test_garch_forecaster_pushes_a_storm_it_sees(system, risk, deployer, forecaster, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    rng = random.Random(5)
    calm = [rng.gauss(0, 0.01) for _ in range(200)]
    storm = calm + [0.09, -0.11, 0.08, -0.12, 0.10]  # five violent days at the end
    forecast = garch_forecast(storm, interval_seconds=86_400)
    assert forecast.alpha + forecast.beta < 1
    assert forecast.variance_per_second > vol.variance_per_second(0.01 * math.sqrt(365))
    assert push_if_higher(risk, eth.id, forecast, forecaster, 3 * 86_400)
    assert int(risk.forecast(eth.id).variance) == int(forecast.variance_per_second * WAD)
    assert not push_if_higher(risk, eth.id, garch_forecast(calm, 86_400), forecaster, 3 * 86_400)


# ---------------------------------------------------------------- bad input


BAD_CONFIGS = {
    "zero-z": {"z": 0.0},
    "multiple-1": {"im_multiple": 1.0},
    "floor-above-cap": {"floor": 0.3, "cap": 0.2},
    "floor-too-low": {"floor": 1e-6},
    "cap-times-multiple": {"cap": 0.5, "im_multiple": 2.0},
    "forecast-too-long": {"max_forecast_duration": 31 * 86_400},
    # a saturated EWMA (2^64 - 1 wei per second) would ask for less than the cap: saturation must never lower margin
    "z-too-small": {"z": 0.05, "horizon": 1},
    "horizon-too-long": {"horizon": 2**24},
    "interval-too-long": {"min_interval": 2**24},
    "tau-too-long": {"tau": 2**32},
}
REASONS = {
    "zero-z": "risk: zero parameter", "multiple-1": "risk: im multiple <= 1", "floor-above-cap": "risk: bad floor",
    "floor-too-low": "risk: bad floor", "cap-times-multiple": "risk: cap x multiple >= 1",
    "forecast-too-long": "risk: forecast too long", "z-too-small": "risk: z too small",
    "horizon-too-long": "risk: interval too long", "interval-too-long": "risk: interval too long",
    "tau-too-long": "risk: tau too long",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_is_refused(risk, deployer, eth, name):
    params = vol.VolMarginParams(**BAD_CONFIGS[name])
    with pytest.raises(ContractLogicError, match=REASONS[name]):
        risk.configure(eth.id, params.as_tuple(), sender=deployer)


@pytest.mark.parametrize("field", [0, 3, 4, 5])  # z, im_multiple, floor, cap
def test_a_ratio_finer_than_the_stored_unit_is_refused_not_rounded(risk, deployer, eth, field):
    raw = list(PARAMS.as_tuple())
    raw[field] += 1  # one wei: finer than the 1e-12 RiskParams stores
    with pytest.raises(ContractLogicError, match="risk: finer than 1e-12"):
        risk.configure(eth.id, tuple(raw), sender=deployer)


def test_a_variance_beyond_the_packed_width_is_refused(risk, deployer, forecaster, eth):
    raw = list(PARAMS.as_tuple())
    raw[8] = 2**64  # initial variance
    with pytest.raises(ContractLogicError, match="risk: variance too large"):
        risk.configure(eth.id, tuple(raw), sender=deployer)
    with pytest.raises(ContractLogicError, match="risk: variance too large"):
        risk.push_forecast(eth.id, 2**64, 3_600, sender=forecaster)


@pytest.mark.parametrize("params", [PARAMS, vol.VolMarginParams(z=4.753424, horizon=2**24 - 1, tau=2**32 - 1,
                                                                im_multiple=1.000001, floor=0.000123456789,
                                                                cap=0.987654321012, min_interval=2**24 - 1,
                                                                max_forecast_duration=30 * 86_400,
                                                                initial_volatility=3.0)])
def test_the_packed_config_reads_back_exactly(risk, deployer, eth, params):
    risk.configure(eth.id, params.as_tuple(), sender=deployer)
    assert tuple(int(x) for x in risk.risk_config(eth.id)) == params.as_tuple()


def test_a_huge_return_saturates_the_estimate_at_the_cap(system, risk, deployer, eth):
    fast = replace(PARAMS, tau=1)  # alpha ~ 0.63 per second: one round can carry the estimate past 2^64 wei
    risk.configure(eth.id, fast.as_tuple(), sender=deployer)
    t = _now() + 60
    _round(system, deployer, 3000, t)
    risk.poke(eth.id, sender=deployer)
    _round(system, deployer, 3_000_000, t + 1)  # x1000 in one second: r^2/dt ~ 47.7 per second, beyond 2^64 wei
    risk.poke(eth.id, sender=deployer)
    state = risk.risk_state(eth.id)
    assert int(state.variance) == 2**64 - 1 == int(state.stressed)  # saturated, never wrapped
    assert vol.ewma(int(fast.as_tuple()[-1]) / WAD, math.log(1000), 1, 1) == vol.MAX_VARIANCE  # the mirror agrees
    assert int(risk.target_mm_ratio(eth.id)) == int(PARAMS.cap * WAD)


def test_the_forecast_reads_back_with_its_window(risk, forecaster, eth):
    risk.push_forecast(eth.id, 12_345_678, 86_400, sender=forecaster)
    start = _now()
    f = risk.forecast(eth.id)
    assert (int(f.variance), int(f.start), int(f.end)) == (12_345_678, start, start + 86_400)


def test_a_rate_limited_poke_reports_no_change_and_keeps_the_ratios(system, risk, deployer, eth):
    t = _now() + 60
    _round(system, deployer, 3000, t)
    assert risk.poke.call(eth.id) is True  # the first poke moves the static ratios to the volatility ones
    first = risk.poke(eth.id, sender=deployer)
    assert first.decode_logs(risk.MarginRatiosSet)
    ratios = _ratios(system, eth.id)
    _round(system, deployer, 2000, t + 60)
    assert risk.poke.call(eth.id) is False
    held = risk.poke(eth.id, sender=deployer)
    assert not held.decode_logs(risk.MarginRatiosSet) and held.decode_logs(risk.VolatilityUpdated)
    assert _ratios(system, eth.id) == ratios


# An account that meets IM before a poke is never liquidatable after it, whatever the path and the forecasts:
# the rule under test is "new MM ratio <= IM ratio in force before", checked on every poke of random paths.
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.tuples(st.integers(1, 3 * 3_600), st.floats(-0.35, 0.35),
                                st.one_of(st.none(), st.integers(20, 63))), min_size=2, max_size=7))
def test_no_poke_asks_more_maintenance_than_the_initial_margin_before_it(system, risk, deployer, forecaster, eth,
                                                                          steps):
    with chain.isolate():
        t, price = _now() + 60, 3000.0
        _round(system, deployer, price, t)
        risk.poke(eth.id, sender=deployer)
        for dt, log_return, forecast_exp in steps:
            if forecast_exp is not None:
                risk.push_forecast(eth.id, 2**forecast_exp, PARAMS.max_forecast_duration, sender=forecaster)
            t += dt
            price *= math.exp(log_return)
            _round(system, deployer, price, t)
            im_before, mm_before = _ratios(system, eth.id)
            risk.poke(eth.id, sender=deployer)
            im, mm = _ratios(system, eth.id)
            assert mm <= im_before and mm < im
            assert (im, mm) == (im_before, mm_before) or int(PARAMS.floor * WAD) <= mm <= int(PARAMS.cap * WAD)


def test_configure_needs_the_role_and_a_listed_market(risk, deployer, attacker, eth):
    with pytest.raises(ContractLogicError, match="access_control: account is missing role"):
        risk.configure(eth.id, PARAMS.as_tuple(), sender=attacker)
    with pytest.raises(ContractLogicError, match="vault: unknown market"):
        risk.configure(999, PARAMS.as_tuple(), sender=deployer)


def test_the_forecaster_reads_the_returns_the_chain_folded(system, risk, deployer, eth):
    start = chain.blocks.head.number
    t = _now() + 60
    prices = [3000, 3030, 2970, 3100]
    for p in prices:
        t += 600
        _round(system, deployer, p, t)
        risk.poke(eth.id, sender=deployer)
    returns, spacing = oracle_returns(risk, eth.id, start)
    assert spacing == 600
    assert returns == pytest.approx([math.log(b / a) for a, b in zip(prices, prices[1:])], rel=1e-12)


# ---------------------------------------------------------------- wiring


def test_the_keeper_pokes_each_new_round_once(system, risk, deployer, keeper, eth):
    bot = Keeper(replace(system, risk=risk), keeper, gas_price_wei=0, start_block=chain.blocks.head.number + 1)
    _round(system, deployer, 3000, _now() + 60)
    bot.run()
    bot.drain()
    assert bot.metrics.pokes == 1  # only ETH-PERP is configured
    assert int(risk.risk_state(eth.id).round_id) == int(eth.feed.latestRoundData()[0])
    bot.run()
    assert bot.metrics.pokes == 1  # no new round: nothing sent


def test_a_deployment_with_vol_margin_wires_and_saves_risk_params(deployer, tmp_path):
    deployed = deploy_system(deployer, SystemConfig(vol_margin=True))
    risk = deployed.risk
    assert deployed.vault.hasRole(deployed.vault.RISK_ADMIN_ROLE(), risk)  # it writes the ratio fields itself
    assert all(int(risk.risk_config(m.id).tau) == PARAMS.tau for m in deployed.markets.values())
    path = tmp_path / "deployment.json"
    deployed.save(path)
    assert load_system(path).risk.address == risk.address
