"""Liquidation tiers: close factor, full-close tier boundary, dust and the keeper fee floor."""

import ape

from backstop.client.actors import trade
from backstop.core.units import WAD, wad



def _first_full_close_price(kit, trader, eth, majors):
    """Smallest 8-decimal feed price at which equity < 50% of MM."""
    tier = int(kit.engine.params().full_close_tier)
    return kit.first_price(trader, eth, majors, 3_200 * 10**8, 3_400 * 10**8, lambda e, mm: e * WAD < tier * mm)


def test_tier_boundary_equity_just_above_half_mm_is_partial(short_eth, engine, trader, keeper, majors, eth, kit):
    k = _first_full_close_price(kit, trader, eth, majors) - 1
    kit.feed_price("ETH-PERP", k)
    h = kit.health(trader, majors)
    assert 2 * h.equity >= h.mm and h.equity < h.mm
    size, _, _, full, _ = engine.liquidation_quote(trader, eth.id, wad(10))
    assert not full and size == wad("2.5")
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert not event.full_close and event.size == wad("2.5")


def test_tier_boundary_equity_just_below_half_mm_closes_whole_position(short_eth, engine, trader, keeper, majors, eth, kit):
    k = _first_full_close_price(kit, trader, eth, majors)
    kit.feed_price("ETH-PERP", k)
    h = kit.health(trader, majors)
    assert 2 * h.equity < h.mm
    size, _, _, full, _ = engine.liquidation_quote(trader, eth.id, wad(10))
    assert full and size == wad(10)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert event.full_close and event.size == wad(10)
    assert kit.vault.position(trader, eth.id)[0] == 0
    assert int(kit.vault.position(keeper, eth.id)[0]) == -wad(10)


def test_close_factor_caps_each_call_at_25_percent(short_eth, engine, trader, keeper, majors, eth, kit):
    kit.eth(3300)  # equity 985, MM 1,650: partial tier, still liquidatable after one call
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    assert kit.events(receipt, engine.Liquidated)[0].size == wad("2.5")
    assert int(kit.vault.position(trader, eth.id)[0]) == -wad("7.5")
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    assert kit.events(receipt, engine.Liquidated)[0].size == wad("7.5") // 4
    assert int(kit.vault.position(trader, eth.id)[0]) == -(wad("7.5") - wad("7.5") // 4)


def test_size_below_close_factor_is_respected(short_eth, engine, trader, keeper, eth, kit):
    kit.eth(3300)
    receipt = engine.liquidate(trader, eth.id, wad(1), sender=keeper)
    assert kit.events(receipt, engine.Liquidated)[0].size == wad(1)
    assert int(kit.vault.position(keeper, eth.id)[0]) == -wad(1)


def test_remaining_notional_below_min_closes_whole_position(book, system, engine, maker, other, keeper, majors, eth):
    # 0.04 ETH short (notional 130 at 3,250): 25% would leave 97.5 < 100 -> whole position
    book.fund(other, majors, 15)
    trade(system, maker, other, eth.id, wad("0.04"), wad(3000))
    book.eth(3250)
    h = book.health(other, majors)
    assert h.equity < h.mm and 2 * h.equity >= h.mm  # partial tier by equity
    receipt = engine.liquidate(other, eth.id, wad(1), sender=keeper)
    (event,) = book.events(receipt, engine.Liquidated)
    assert event.full_close and event.size == wad("0.04")
    assert system.vault.position(other, eth.id)[0] == 0


def _dust_short(book, system, maker, owner, majors, eth):
    """0.03 ETH short at 3,000 (notional 90-96: below the 100 minimum) on 10 of collateral."""
    book.fund(owner, majors, 10)
    trade(system, maker, owner, eth.id, wad("0.03"), wad(3000))
    book.eth(3200)  # notional 96, equity 3.955, MM 4.8: liquidatable, partial tier by equity
    h = book.health(owner, majors)
    assert h.equity < h.mm and 2 * h.equity >= h.mm


def test_dust_closed_fully_with_keeper_fee_top_up_to_floor(book, system, engine, maker, other, keeper, majors, eth):
    _dust_short(book, system, maker, other, majors, eth)
    keeper_before = int(system.vault.collateral(keeper, majors))
    receipt = engine.liquidate(other, eth.id, wad(1), sender=keeper)  # auction t = 0: d = 0
    (event,) = book.events(receipt, engine.Liquidated)
    floor = int(engine.params().keeper_fee_floor)
    assert floor == book.usd(2)
    assert event.full_close and event.size == wad("0.03") and event.discount == 0
    assert event.keeper_fee == floor
    assert int(system.vault.collateral(keeper, majors)) - keeper_before == floor
    assert system.vault.position(other, eth.id)[0] == 0


def test_dust_keeper_fee_tops_up_discount_to_floor(book, system, engine, maker, other, keeper, majors, eth):
    _dust_short(book, system, maker, other, majors, eth)
    engine.flag(other, majors, sender=keeper)
    t0 = engine.flagged_at(other, majors)
    book.at(t0 + 120)  # d = 1%: reward 0.96 < 2
    receipt = engine.liquidate(other, eth.id, wad("0.03"), sender=keeper)
    (event,) = book.events(receipt, engine.Liquidated)
    reward = event.size * (event.price - event.mark) // book.scale
    assert event.discount == wad("0.01")
    assert 0 < reward < book.usd(2)
    assert reward + event.keeper_fee == book.usd(2)


def test_dust_no_top_up_once_discount_exceeds_floor(book, system, engine, maker, other, keeper, majors, eth):
    _dust_short(book, system, maker, other, majors, eth)
    engine.flag(other, majors, sender=keeper)
    book.at(engine.flagged_at(other, majors) + 300)  # d = 2.5%: reward 2.4 >= 2
    receipt = engine.liquidate(other, eth.id, wad("0.03"), sender=keeper)
    (event,) = book.events(receipt, engine.Liquidated)
    assert event.keeper_fee == 0
    assert event.size * (event.price - event.mark) // book.scale >= book.usd(2)


def test_keeper_fee_floor_is_paid_once_per_position_not_per_call(short_eth, system, engine, trader, keeper, majors, eth, kit):
    """BUG pin: in the full-close tier `amount = min(size, held)` honours a tiny `size`, and
    every such call still tops the reward up to the keeper fee floor. A keeper can split a
    full close into many 1-wei calls and collect the floor (2 units) each time from the
    liquidated account (and, once it is bankrupt, from the pool)."""
    kit.eth(3350)  # equity 485 < 50% of MM 1,675: full-close tier
    fees = 0
    for _ in range(3):
        receipt = engine.liquidate(trader, eth.id, 1, sender=keeper)
        fees += kit.events(receipt, engine.Liquidated)[0].keeper_fee
    assert fees <= int(engine.params().keeper_fee_floor), f"keeper fees {fees} for 3 wei of position"


def test_dust_position_is_closed_whole_even_for_a_smaller_size(book, system, engine, maker, other, keeper, majors, eth):
    """BUG pin (same root cause): a dust position (notional < min) is "closed fully" only if
    the keeper asks for all of it; a smaller `size` leaves an even smaller dust remainder
    and still pays the full keeper fee floor."""
    _dust_short(book, system, maker, other, majors, eth)
    receipt = engine.liquidate(other, eth.id, wad("0.001"), sender=keeper)
    (event,) = book.events(receipt, engine.Liquidated)
    assert event.full_close
    assert event.size == wad("0.03"), f"closed {event.size} of a dust position, keeper fee {event.keeper_fee}"
