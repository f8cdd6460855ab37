"""Flagging: only liquidatable accounts, once; unflag only after recovery."""

import ape

from backstop.core.units import wad


def test_healthy_account_cannot_be_flagged(short_eth, engine, trader, keeper, majors, kit):
    kit.eth(3200)  # equity 1,985 >= MM 1,600
    h = kit.health(trader, majors)
    assert h.equity >= h.mm > 0
    with ape.reverts("engine: account healthy"):
        engine.flag(trader, majors, sender=keeper)


def test_flat_account_cannot_be_flagged(book, engine, keeper, majors, other):
    book.fund(other, majors, 1_000)
    with ape.reverts("engine: account healthy"):
        engine.flag(other, majors, sender=keeper)


def test_healthy_account_cannot_be_liquidated(short_eth, engine, trader, keeper, majors, eth, kit):
    kit.eth(3236)  # just above MM: equity 1,625 >= MM 1,618
    h = kit.health(trader, majors)
    assert h.equity >= h.mm
    with ape.reverts("engine: account healthy"):
        engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    with ape.reverts("engine: account healthy"):
        engine.liquidation_quote(trader, eth.id, wad(10))


def test_equity_at_mm_boundary(short_eth, engine, trader, keeper, majors, eth, kit):
    # equity(P) = 33,985 - 10 P and MM = 0.5 P cross near 3,236.67; find the exact 8-decimal
    # feed price with the vault's rounding: healthy at k - 1 (equity >= MM), flaggable at k.
    k = kit.first_price(trader, eth, majors, 3_200 * 10**8, 3_300 * 10**8, lambda e, mm: e < mm)
    kit.feed_price("ETH-PERP", k - 1)
    h = kit.health(trader, majors)
    assert h.equity >= h.mm
    with ape.reverts("engine: account healthy"):
        engine.flag(trader, majors, sender=keeper)
    kit.feed_price("ETH-PERP", k)
    h = kit.health(trader, majors)
    assert h.equity < h.mm
    engine.flag(trader, majors, sender=keeper)


def test_flag_sets_flagged_at_and_emits_flagged(short_eth, engine, trader, keeper, majors, kit):
    kit.eth(3300)
    receipt = engine.flag(trader, majors, sender=keeper)
    ts = ape.chain.blocks[receipt.block_number].timestamp
    assert engine.flagged_at(trader, majors) == ts
    (event,) = kit.events(receipt, engine.Flagged)
    assert (event.owner, event.segment, event.flagged_by) == (trader.address, majors, keeper.address)


def test_flag_twice_reverts_already_flagged(short_eth, engine, trader, keeper, other, majors, kit):
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    with ape.reverts("engine: already flagged"):
        engine.flag(trader, majors, sender=other)


def test_unflag_while_liquidatable_reverts(short_eth, engine, trader, keeper, majors, kit):
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    with ape.reverts("engine: still liquidatable"):
        engine.unflag(trader, majors, sender=keeper)


def test_unflag_not_flagged_reverts(short_eth, engine, trader, keeper, majors, kit):
    with ape.reverts("engine: not flagged"):
        engine.unflag(trader, majors, sender=keeper)


def test_unflag_after_recovery_clears_and_restarts_auction(short_eth, engine, trader, keeper, majors, eth, kit):
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    kit.at(kit.now() + 500)
    kit.eth(3000)  # recovered
    receipt = engine.unflag(trader, majors, sender=keeper)
    assert engine.flagged_at(trader, majors) == 0
    (event,) = kit.events(receipt, engine.Unflagged)
    assert (event.owner, event.segment) == (trader.address, majors)
    # a new flag starts the auction at the start discount again
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    assert engine.auction_discount(trader, majors) == 0


def test_deposit_that_restores_health_allows_unflag(short_eth, engine, trader, keeper, majors, kit):
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    kit.fund(trader, majors, 1_000)
    with ape.reverts("engine: account healthy"):
        engine.flag(trader, majors, sender=keeper)
    engine.unflag(trader, majors, sender=keeper)
    assert engine.flagged_at(trader, majors) == 0
