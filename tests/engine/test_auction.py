"""Dutch auction: d grows linearly from the start discount to the max over the duration."""

import pytest
from ape import chain

from backstop.units import wad

WAD = 10**18


def expected_discount(engine, elapsed: int) -> int:
    p = engine.params()
    if elapsed >= p.auction_duration:
        return p.auction_max_discount
    return p.auction_start_discount + (p.auction_max_discount - p.auction_start_discount) * elapsed // p.auction_duration


def expected_price(mark: int, d: int, is_long: bool) -> int:
    if is_long:
        return mark * (WAD - d) // WAD
    return -(-mark * (WAD + d) // WAD)


def _setup(side, kit, request):
    """Full-close tier (no partial cap), solvent: long at 2,650 (equity 500 < 662.5),
    short at 3,350 (equity 485 < 837.5). Late in the auction the discount exceeds the
    equity, so the majors pool is seeded to cover the deficit."""
    kit.seed(kit.system.pools["majors"], kit.usd(100_000), request.getfixturevalue("lp"))
    if side == "long":
        request.getfixturevalue("long_eth")
        return kit.eth(2650), True
    request.getfixturevalue("short_eth")
    return kit.eth(3350), False


def test_default_auction_parameters(engine, kit):
    p = engine.params()
    assert (p.auction_start_discount, p.auction_max_discount, p.auction_duration) == (0, wad("0.05"), 600)
    assert (p.close_factor, p.full_close_tier, p.liquidation_penalty) == (wad("0.25"), wad("0.5"), wad("0.01"))
    assert (p.min_liquidation_notional, p.keeper_fee_floor) == (kit.usd(100), kit.usd(2))


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("elapsed", [0, 1, 300, 599, 600, 900])
def test_auction_price_matches_quote_and_formula(side, elapsed, request, kit, engine, trader, keeper, eth, majors):
    mark, is_long = _setup(side, kit, request)
    d = expected_discount(engine, elapsed)
    if elapsed == 0:
        # not flagged yet: the quote uses the start discount, liquidate flags at this block
        q_size, q_price, q_profit, q_full = engine.liquidation_quote(trader, eth.id, wad(10))
        assert engine.auction_discount(trader, majors) == d
    else:
        engine.flag(trader, majors, sender=keeper)
        t0 = engine.flagged_at(trader, majors)
        snap = chain.snapshot()
        kit.mine_at(t0 + elapsed)
        assert engine.auction_discount(trader, majors) == d
        q_size, q_price, q_profit, q_full = engine.liquidation_quote(trader, eth.id, wad(10))
        chain.restore(snap)
        kit.at(t0 + elapsed)
    assert q_full and q_size == wad(10)
    assert q_price == expected_price(mark, d, is_long)
    assert q_profit == wad(10) * abs(mark - q_price) // kit.scale

    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert (event.discount, event.price, event.mark, event.size) == (d, q_price, mark, q_size)
    assert int(kit.vault.position(keeper, eth.id)[0]) == (wad(10) if is_long else -wad(10))


@pytest.mark.parametrize("elapsed", [0, 300, 600])
def test_auction_prices_at_key_times(elapsed, short_eth, kit, engine, trader, keeper, eth, majors, system, lp):
    """Plain numbers: ETH 3,350 short, d = 0%, 2.5%, 5% at 0 s, 300 s, 600 s."""
    kit.seed(system.pools["majors"], kit.usd(100_000), lp)
    kit.eth(3350)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + elapsed)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    expected = {0: wad(3350), 300: wad("3433.75"), 600: wad("3517.5")}[elapsed]
    assert event.price == expected


def test_partial_tier_discount_capped_by_ratio_room(short_eth, kit, engine, trader, keeper, eth, majors):
    """At 3,250 (equity 1,485, MM 1,625) the room is 1,485 x 5% / 1,625 - 1% - 1 bp = 3.5592%,
    below the 5% the auction has reached at 600 s."""
    kit.eth(3250)
    h = kit.health(trader, majors)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 600)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    room = h.equity * wad("0.05") // h.mm - wad("0.01") - 10**14
    assert not event.full_close
    assert event.discount == room < wad("0.05")
    assert event.price == expected_price(wad(3250), room, False)


def test_partial_tier_room_at_tier_boundary_is_about_1_49_percent(short_eth, kit, engine, trader, keeper, eth, majors):
    """Just above the full-close tier (equity = 50% of MM) the cap is 2.5% - 1% - 0.01%."""
    tier = int(engine.params().full_close_tier)
    k = kit.first_price(trader, eth, majors, 3_200 * 10**8, 3_400 * 10**8, lambda e, mm: e * WAD < tier * mm)
    kit.feed_price("ETH-PERP", k - 1)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 600)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (event,) = kit.events(receipt, engine.Liquidated)
    assert not event.full_close
    assert wad("0.0149") <= event.discount < wad("0.0150")
