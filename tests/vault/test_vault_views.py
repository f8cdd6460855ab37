"""Views: position, collateral, equity, margins, liquidatability, batch health, listings."""

import ape
import pytest

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import wad


def _health(vault, lens, owner, segment):
    im, mm = lens.margin_requirements(owner, segment)
    return (vault.collateral(owner, segment), lens.equity(owner, segment), im, mm)


def test_views_of_an_unknown_account_are_zero(vault, lens, attacker, eth, majors):
    assert vault.position(attacker, eth.id) == (0, 0)
    assert vault.collateral(attacker, majors) == 0
    assert lens.equity(attacker, majors) == 0
    assert lens.margin_requirements(attacker, majors) == (0, 0)
    assert not lens.is_liquidatable(attacker, majors)


def test_equity_without_positions_is_collateral(funded, vault, lens, trader, majors, usd):
    assert lens.equity(trader, majors) == vault.collateral(trader, majors) == usd(100_000)
    assert lens.margin_requirements(trader, majors) == (0, 0)


def test_market_view_matches_deployment_config(system, vault, lens):
    for m in system.markets.values():
        assert tuple(lens.market(m.id)) == m.spec.params(m.segment)


def test_segment_markets_lists_in_listing_order(system, vault, lens, majors, alts):
    assert lens.segment_markets(majors) == [system.markets["ETH-PERP"].id, system.markets["BTC-PERP"].id]
    assert lens.segment_markets(alts) == [system.markets["SOL-PERP"].id]
    assert lens.segment_markets(vault.segment_count()) == []
    assert vault.segment_count() == 2 and vault.market_count() == 3


def test_account_health_reports_notional_over_markets(funded, vault, lens, deployer, maker, trader, eth, btc, sol, majors, alts):
    trade(funded, maker, trader, btc.id, wad("0.1"), wad(60000))
    trade(funded, maker, trader, eth.id, wad("1.0000003"), wad(3000))
    trade(funded, maker, trader, sol.id, -wad(5), wad(150))
    set_price(funded, "ETH-PERP", wad("3001.00000007"), deployer)
    for who in (maker, trader):
        health = vault.account_health(who, majors)
        eth_notional = -((-wad("1.0000003") * wad("3001.00000007")) // 10**30)  # rounded up
        assert health.notional == eth_notional + 6_000_000_000
        assert (health.collateral, health.equity, health.im, health.mm) == _health(vault, lens, who, majors)
    assert vault.account_health(maker, alts).notional == 750_000_000


def test_closing_every_position_leaves_a_flat_account(funded, vault, lens, maker, trader, eth, btc, majors):
    trade(funded, maker, trader, btc.id, wad("0.1"), wad(60000))
    trade(funded, maker, trader, eth.id, wad(1), wad(3000))
    trade(funded, maker, trader, eth.id, -wad(1), wad(3000))
    trade(funded, maker, trader, btc.id, -wad("0.1"), wad(60000))
    for who in (maker, trader):
        health = vault.account_health(who, majors)
        assert (health.im, health.mm, health.notional) == (0, 0, 0)
        assert health.equity == health.collateral
        assert not lens.is_liquidatable(who, majors)


def test_position_reports_size_and_entry(open_eth, vault, maker, trader, eth, usd):
    assert vault.position(maker, eth.id) == (wad(10), usd(30_000))
    assert vault.position(trader, eth.id) == (-wad(10), -usd(30_000))


def test_open_interest_counts_longs(funded, vault, lens, maker, trader, attacker, eth, majors, usd):
    fund(funded, attacker, majors, usd(10_000))
    trade(funded, maker, trader, eth.id, wad(10), wad(3000))  # long 10 / short 10
    trade(funded, attacker, maker, eth.id, wad(4), wad(3000))  # maker 6, attacker 4, trader -10
    assert lens.open_interest(eth.id) == wad(10)
    trade(funded, trader, attacker, eth.id, wad(12), wad(3000))  # trader +2, attacker -8
    # longs: maker 6 + trader 2 = 8; shorts: attacker 8
    assert lens.open_interest(eth.id) == wad(8)


# ---------------------------------------------------------------- liquidatable


@pytest.fixture
def thin_long(funded, attacker, trader, eth, majors, usd):
    """Attacker long 1 ETH from 3,000 with exactly IM (300) of collateral."""
    fund(funded, attacker, majors, usd(300))
    trade(funded, attacker, trader, eth.id, wad(1), wad(3000))
    return funded


def test_not_liquidatable_when_healthy(thin_long, vault, lens, attacker, trader, maker, majors):
    assert not lens.is_liquidatable(attacker, majors)
    assert not lens.is_liquidatable(trader, majors)
    assert not lens.is_liquidatable(maker, majors)


def test_liquidatable_after_price_drop(thin_long, vault, lens, deployer, attacker, trader, majors, usd):
    set_price(thin_long, "ETH-PERP", wad(2800), deployer)
    assert lens.equity(attacker, majors) == usd(100)
    assert lens.margin_requirements(attacker, majors)[1] == usd(140)
    assert lens.is_liquidatable(attacker, majors)
    assert not lens.is_liquidatable(trader, majors)  # the winning side


def test_liquidatable_boundary_equity_equal_to_mm_is_safe(thin_long, vault, lens, deployer, attacker, majors):
    # mark 2842.10526400: equity 142_105_264 == MM ceil(2_842_105_264 * 5%) = 142_105_264
    set_price(thin_long, "ETH-PERP", wad("2842.10526400"), deployer)
    assert lens.equity(attacker, majors) == 142_105_264
    assert lens.margin_requirements(attacker, majors)[1] == 142_105_264
    assert not lens.is_liquidatable(attacker, majors)
    # one feed unit lower: equity floor(...) = 142_105_263 < MM (notional rounds up to the same)
    set_price(thin_long, "ETH-PERP", wad("2842.10526399"), deployer)
    assert lens.equity(attacker, majors) == 142_105_263
    assert lens.margin_requirements(attacker, majors)[1] == 142_105_264
    assert lens.is_liquidatable(attacker, majors)


def test_liquidatable_again_false_after_recovery(thin_long, vault, lens, deployer, attacker, majors):
    set_price(thin_long, "ETH-PERP", wad(2800), deployer)
    assert lens.is_liquidatable(attacker, majors)
    set_price(thin_long, "ETH-PERP", wad(2900), deployer)
    assert not lens.is_liquidatable(attacker, majors)


def test_flat_account_with_no_collateral_is_not_liquidatable(funded, vault, lens, attacker, alts):
    assert lens.equity(attacker, alts) == 0
    assert not lens.is_liquidatable(attacker, alts)


def test_liquidatable_is_per_segment(thin_long, vault, lens, deployer, attacker, alts, usd):
    fund(thin_long, attacker, alts, usd(1_000_000))
    set_price(thin_long, "ETH-PERP", wad(2800), deployer)
    assert lens.is_liquidatable(attacker, thin_long.segments["majors"])
    assert not lens.is_liquidatable(attacker, alts)


# ---------------------------------------------------------------- batch health


def test_health_of_matches_single_views(funded, vault, lens, deployer, maker, trader, attacker, other, eth, btc, majors, usd):
    fund(funded, attacker, majors, usd(1000))
    trade(funded, maker, trader, eth.id, wad(10), wad(3000))
    trade(funded, attacker, maker, btc.id, -wad("0.05"), wad(60000))
    set_price(funded, "ETH-PERP", wad("3123.45"), deployer)
    set_price(funded, "BTC-PERP", wad("61234.5"), deployer)
    owners = [maker, trader, attacker, other, maker]
    batch = lens.health_of(owners, majors)
    assert len(batch) == len(owners)
    for owner, health in zip(owners, batch):
        assert tuple(health)[:4] == _health(vault, lens, owner, majors)
    assert tuple(batch[0])[:4] != tuple(batch[1])[:4]


def test_health_of_empty_batch(vault, lens, majors):
    assert list(lens.health_of([], majors)) == []


def test_lens_views_of_unknown_ids_revert_or_read_zero(vault, lens, attacker):
    """The lens adds no checks of its own: an unknown market reverts with the vault's reason,
    an unknown segment reads as empty, like the vault's raw words."""
    with ape.reverts("vault: unknown market"):
        lens.market(vault.market_count())
    with ape.reverts("vault: unknown market"):
        lens.market(2**256 - 1)
    assert lens.segment_markets(vault.segment_count()) == []
    assert lens.segment_cash(2**256 - 1) == (0, 0)
    assert lens.open_interest(2**256 - 1) == 0


def test_lens_batch_is_capped_at_128_accounts(lens, attacker, majors):
    assert len(lens.health_of([attacker] * 128, majors)) == 128
    with pytest.raises(Exception):
        lens.health_of([attacker] * 129, majors)


def test_lens_free_margin_and_liquidatable_batch_match_single_views(funded, vault, lens, deployer, maker, trader,
                                                                    other, eth, majors, usd):
    """Maker long 300 ETH at 3,000 on 100,000 (IM 90,000); at 2,700 its equity is 10,000 and
    MM 5% of 810,000 = 40,500: liquidatable; the short trader is not; `other` is flat."""
    trade(funded, maker, trader, eth.id, wad(300), wad(3000))
    set_price(funded, "ETH-PERP", wad(2700), deployer)
    owners = [maker, trader, other]
    assert lens.liquidatable_of(owners, majors) == [True, False, False]
    assert [lens.is_liquidatable(o, majors) for o in owners] == [True, False, False]
    for owner in owners:
        health = vault.account_health(owner, majors)
        assert lens.free_margin(owner, majors) == min(health.collateral, health.equity) - health.im
    assert lens.free_margin(maker, majors) == usd(10_000) - usd(81_000)
