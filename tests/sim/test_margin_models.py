"""The margin models of the stress comparison (docs/stress.md, "Margin models at equal average margin"): each
deployment has the behaviour its name promises, margin-aware traders size to the IM in force, the calibration
reaches equal average margin, and the comparison writes its table and figure for the four models."""

import csv
import math

import pytest
from ape import chain

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import WAD, quote, wad
from backstop.sim.crowd import target_notional
from backstop.sim.forecast import FastEwmaForecaster, grant_forecaster
from backstop.sim.margin_compare import MODELS, Calibration, calibrate, compare, pooled_margin, storm_path
from backstop.sim.stress import MARGIN_MODELS, SIZE_KNEE, run

# A small crowd on short paths: enough to exercise every step of a run in seconds.
SMALL = dict(traders="margin", n_traders=3, collateral_sigma=0.8, im_share=(0.3, 0.95), latency=0,
             pool_deposit=60_000, backstop_deposit=60_000)


def on_this_chain(specs):
    """A runner for calibrate/compare: each run on the test chain, a fresh deployment per run."""
    return [run(spec) for spec in specs]


def open_long(system, trader, maker, label, notional_units):
    market = system.markets[label]
    price = int(system.oracle.price(market.id))
    fund(system, maker, market.segment, quote(notional_units, system.decimals))
    fund(system, trader, market.segment, quote(notional_units, system.decimals))  # 1x: above any IM here
    size = quote(notional_units, system.decimals) * 10 ** (36 - system.decimals) // price
    trade(system, trader, maker, market.id, size, price)
    return system.lens.health_of([trader.address], market.segment)[0]


def test_a_margin_aware_trader_uses_its_share_of_the_im_limit_flat_or_with_a_knee():
    equity, share, decimals = quote(10_000, 6), 0.6, 6
    flat = target_notional(equity, wad(0.10), 0, decimals, share)
    assert flat == pytest.approx(quote(60_000, 6), rel=1e-9)  # 0.6 x 10,000 / 10%
    assert target_notional(equity, wad(0.20), 0, decimals, share) == pytest.approx(flat / 2, rel=1e-9)
    kneed = target_notional(equity, wad(0.10), SIZE_KNEE, decimals, share)
    knee = SIZE_KNEE * 10_000 * 10**decimals
    assert kneed < flat  # the knee asks more margin of a bigger position, so the same budget buys less
    assert kneed * 0.10 * (1 + kneed / knee) == pytest.approx(share * equity, rel=1e-6)


def test_the_size_model_asks_more_im_of_a_whale_than_static_and_about_the_same_of_a_minnow(deployer, accounts):
    maker, minnow, whale = accounts[1], accounts[2], accounts[3]
    static = MARGIN_MODELS["static"].deploy(deployer)
    static_whale = open_long(static, whale, maker, "ETH-PERP", 300_000)
    sized = MARGIN_MODELS["size"].deploy(deployer)
    sized_whale = open_long(sized, whale, maker, "ETH-PERP", 300_000)
    sized_minnow = open_long(sized, minnow, maker, "ETH-PERP", 1_000)
    im, notional = sized_whale[2], sized_whale[4]
    assert static_whale[2] == pytest.approx(static_whale[4] * 0.10, rel=1e-6)
    assert im == pytest.approx(notional * 0.10 * (1 + notional / (SIZE_KNEE * 10_000 * 10**6)), rel=1e-6)
    assert im > 3.9 * static_whale[2]  # 300,000 against a 100,000 knee: x4
    assert sized_minnow[2] <= sized_minnow[4] * 0.10 * 1.011  # 1,000 against the knee: x1.01


def test_scaled_static_and_ewma_deployments_put_the_scaled_ratios_in_force(deployer, keeper):
    static = MARGIN_MODELS["static"].deploy(deployer, 0.8)
    params = static.lens.market(static.markets["BTC-PERP"].id)
    assert (int(params.im_ratio), int(params.mm_ratio)) == (wad(0.08), wad(0.04))
    ewma = MARGIN_MODELS["ewma"].deploy(deployer, 1.5)
    market = ewma.markets["BTC-PERP"].id
    ewma.risk.poke(market, sender=keeper)  # the first round: the prior variance is below the floor
    params = ewma.lens.market(market)
    assert int(params.mm_ratio) == pytest.approx(wad(0.03 * 1.5), rel=1e-9)  # the scaled floor
    assert int(params.im_ratio) == pytest.approx(2 * wad(0.03 * 1.5), rel=1e-9)


def test_the_predictive_forecast_raises_the_target_mm_ratio_above_the_realized_one(deployer, keeper, other):
    system = MARGIN_MODELS["predictive"].deploy(deployer)
    market = system.markets["SOL-PERP"]
    grant_forecaster(system, deployer, other)
    forecaster = FastEwmaForecaster(system, other)
    forecaster.step()  # first look: the prior
    system.risk.poke(market.id, sender=keeper)
    chain.pending_timestamp = int(chain.blocks.head.timestamp) + 60
    price = int(system.oracle.price(market.id))
    set_price(system, "SOL-PERP", price * 88 // 100, deployer)  # -12% in a minute
    system.risk.poke(market.id, sender=keeper)  # the realized EWMA (tau ~16 days) folds it
    realized = int(system.risk.target_mm_ratio(market.id))
    assert forecaster.step() >= 1  # the fast EWMA asks for more than the chain's estimate: pushed
    forecast = int(system.risk.target_mm_ratio(market.id))
    assert forecast > realized
    # the pushed variance is the fast EWMA after that one return (tau 30 min), as the contract received it
    alpha = 1 - math.exp(-60 / forecaster.tau)
    expected = (1 - alpha) * 0.8**2 / (365 * 86_400) + alpha * math.log(0.88) ** 2 / 60
    assert int(system.risk.effective_variance(market.id)) / WAD == pytest.approx(expected, rel=1e-3)


def test_calibration_steps_converge_and_bisect_inside_the_bracket():
    """The search on a known, nonlinear average-margin curve: within tolerance in a few steps."""
    curve = lambda scale: 0.06 * scale**1.3 + 0.004 * scale  # noqa: E731 - a rising, convex average
    search = Calibration("fake", target=0.10, tolerance=0.005)
    while not search.done and len(search.tried) < 8:
        scale = search.next_scale()
        search.tried.append((scale, curve(scale)))
    assert search.done and len(search.tried) <= 5
    assert abs(search.measured / 0.10 - 1) <= 0.005
    # a flat secant through the last two points would jump far outside [1.0, 2.9]: bisect the bracket instead
    bracketed = Calibration("fake", target=0.10, tried=[(1.0, 0.05), (3.0, 0.2), (2.9, 0.1999)])
    assert bracketed.next_scale() == pytest.approx((1.0 + 2.9) / 2)


def test_calibration_on_the_chain_brings_the_size_model_to_static_average_margin():
    paths = [(storm_path(100, steps=6), 100)]
    target, found = calibrate(["static", "size"], on_this_chain, paths, crowd=SMALL, tolerance=0.02)
    assert target == pytest.approx(0.10, rel=1e-4)  # static posts its IM ratio on every position
    size = found["size"]
    assert size.done and abs(size.measured / target - 1) <= 0.02, size.tried
    assert size.scale < 1  # the knee adds margin, so the base ratios must come down to the same average


def test_the_comparison_writes_its_table_and_figure_for_the_four_models(tmp_path):
    paths = [(storm_path(7, steps=5), 7)]
    scales = {"static": 1.0, "ewma": 1.6, "predictive": 1.4, "size": 0.8}
    result = compare(on_this_chain, out_dir=tmp_path, evaluation=paths, scales=scales, crowd=SMALL)
    with open(result.files["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["model"] for row in rows] == list(MODELS)
    assert [float(row["scale"]) for row in rows] == [scales[m] for m in MODELS]
    by_model = {r.margin_model: r for r in result.results}
    assert set(by_model) == set(MODELS) and not any(r.failed for r in result.results)
    for row in rows:  # each row's figures are its runs' figures
        runs = [r for r in result.results if r.margin_model == row["model"]]
        assert float(row["avg_margin"]) == pytest.approx(pooled_margin(runs))
        assert int(row["liquidations"]) == sum(r.liquidations for r in runs)
    assert result.files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
