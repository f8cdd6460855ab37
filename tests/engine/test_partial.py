"""Partial liquidations: margin ratio never falls, liquidator IM, reverts, penalty to the pool."""

from fractions import Fraction

import ape
import pytest

from backstop.client.actors import trade
from backstop.core.units import WAD, wad



def ratio(h) -> Fraction:
    return Fraction(int(h.equity), int(h.mm))


@pytest.mark.parametrize("price", ["3240", "3250", "3280", "3300", "3315.5"])
@pytest.mark.parametrize("elapsed", [0, 120, 600, 1200])
def test_partial_liquidation_never_lowers_margin_ratio(price, elapsed, short_eth, kit, engine, trader, keeper, eth, majors):
    kit.eth(price)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + elapsed)
    for _ in range(6):  # keep liquidating while it stays liquidatable and partial
        before = kit.health(trader, majors)
        if before.equity >= before.mm:
            break
        receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
        (event,) = kit.events(receipt, engine.Liquidated)
        after = kit.health(trader, majors)
        if event.full_close:
            break
        assert ratio(after) >= ratio(before), (price, elapsed, before, after)


def test_partial_liquidation_never_lowers_ratio_of_long(long_eth, kit, engine, trader, keeper, eth, majors):
    kit.eth(2700)  # equity 1,000 < MM 1,350, >= 675
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 600)
    before = kit.health(trader, majors)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    assert not kit.events(receipt, engine.Liquidated)[0].full_close
    assert ratio(kit.health(trader, majors)) >= ratio(before)


def test_unfunded_liquidator_fails_initial_margin(short_eth, kit, engine, trader, other, eth):
    kit.eth(3300)
    with ape.reverts("vault: below initial margin"):
        engine.liquidate(trader, eth.id, wad(10), sender=other)


def test_undercollateralized_liquidator_fails_initial_margin(short_eth, kit, engine, trader, other, eth, majors):
    kit.fund(other, majors, 500)  # taking 2.5 ETH at 3,300 needs IM 825
    kit.eth(3300)
    with ape.reverts("vault: below initial margin"):
        engine.liquidate(trader, eth.id, wad(10), sender=other)
    engine.liquidate(trader, eth.id, wad(1), sender=other)  # IM 330 <= 500: fine
    assert int(kit.vault.position(other, eth.id)[0]) == -wad(1)


def test_self_liquidation_reverts(short_eth, kit, engine, trader, eth):
    kit.eth(3300)
    with ape.reverts("engine: self-liquidation"):
        engine.liquidate(trader, eth.id, wad(10), sender=trader)


def test_zero_size_reverts(short_eth, kit, engine, trader, keeper, eth):
    kit.eth(3300)
    with ape.reverts("engine: zero size"):
        engine.liquidate(trader, eth.id, 0, sender=keeper)


def test_unknown_market_reverts(short_eth, kit, engine, trader, keeper):
    kit.eth(3300)
    with ape.reverts("vault: unknown market"):
        engine.liquidate(trader, 99, wad(1), sender=keeper)


def test_no_position_in_market_reverts(short_eth, kit, engine, trader, keeper, btc):
    kit.eth(3300)  # liquidatable through ETH; nothing in BTC (same segment)
    with ape.reverts("engine: no position"):
        engine.liquidate(trader, btc.id, wad(1), sender=keeper)


def test_paused_engine_rejects_flag_liquidate_deleverage(short_eth, kit, engine, trader, keeper, maker, eth, majors, deployer):
    kit.eth(3300)
    engine.pause(sender=deployer)
    with ape.reverts("pausable: contract is paused"):
        engine.flag(trader, majors, sender=keeper)
    with ape.reverts("pausable: contract is paused"):
        engine.liquidate(trader, eth.id, wad(1), sender=keeper)
    with ape.reverts("pausable: contract is paused"):
        engine.deleverage(trader, eth.id, maker, wad(1), sender=keeper)
    engine.unpause(sender=deployer)
    engine.liquidate(trader, eth.id, wad(1), sender=keeper)


def test_only_guardian_pauses(engine, keeper):
    with ape.reverts():
        engine.pause(sender=keeper)


def test_penalty_goes_to_segment_pool_income(short_eth, system, kit, engine, trader, keeper, eth, majors, alts):
    kit.eth(3300)
    pool = system.pools["majors"]
    vault = system.vault
    lens = system.lens
    pending_before = kit.pending_pool_income(majors)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    penalty = wad("2.5") * wad(3300) // kit.scale * wad("0.01") // WAD  # 1% of 8,250
    assert event.penalty == penalty == kit.usd("82.5")
    assert kit.pending_pool_income(majors) - pending_before == penalty
    assert kit.pending_pool_income(alts) == 0

    fees = int(lens.accrued_fees(eth.id))  # the opening taker fee, 15
    to_pool = fees * int(vault.pool_fee_share_bps()) // 10_000 + penalty
    managed_before = int(pool.managed_assets())
    total_before = int(pool.totalAssets())
    backstop_before = int(system.backstop.managed_assets())
    receipt = vault.sweep_fees(majors, sender=keeper)
    (swept,) = kit.events(receipt, vault.FeesSwept)
    assert swept.to_pool == to_pool
    (income,) = kit.events(receipt, pool.IncomeNotified)
    assert income.amount == to_pool
    to_backstop = to_pool * int(pool.backstop_income_share_bps()) // 10_000
    assert income.to_backstop == to_backstop
    assert int(pool.managed_assets()) - managed_before == to_pool - to_backstop
    assert int(system.backstop.managed_assets()) - backstop_before == to_backstop
    # vesting income: not in totalAssets at once
    assert int(pool.unvested_income()) == to_pool - to_backstop
    assert int(pool.totalAssets()) == total_before
    assert kit.pending_pool_income(majors) == 0
    kit.mine_at(kit.now() + 86400)
    assert int(pool.totalAssets()) == total_before + to_pool - to_backstop


def test_penalty_capped_by_remaining_equity_on_full_close(short_eth, system, kit, engine, trader, keeper, eth, majors):
    """Short at 3,390 (equity 85, notional 33,900): penalty 339 > equity -> only what is left
    after the keeper fee (2 units) and the reward, less 2 wei of rounding slack."""
    kit.eth(3390)
    before = kit.health(trader, majors)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert event.full_close and event.discount == 0 and event.keeper_fee == kit.usd(2)
    assert event.penalty == int(before.equity) - kit.usd(2) - 2
    assert int(kit.vault.collateral(trader, majors)) >= 0


def test_regression_capped_penalty_on_solvent_long_full_close_creates_no_bad_debt(long_eth, system, kit, engine, trader, keeper, eth, majors):
    """Regression (found by the engine tests): the penalty cap `equity - reward - keeper_fee` is computed from the floor of
    each notional separately, while the vault realizes floor(size x price); for a long the
    two floors can differ by one unit, so a solvent account ends at collateral -1 and the
    pool is asked to cover 1 unit of bad debt (with empty pools the liquidation reverts
    "engine: deficit exceeds cover, deleverage"). ETH 2,640.12345671: equity 401.23,
    full-close tier; at 120 s d = 1%, reward 264.01, remaining 137.2 < penalty 264.01."""
    kit.price("ETH-PERP", "2640.12345671")
    before = kit.health(trader, majors)
    assert 0 < before.equity and 2 * before.equity < before.mm
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 120)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert event.penalty < wad(10) * event.mark // kit.scale // 100
    assert int(kit.vault.collateral(trader, majors)) >= 0
