"""Realized / unrealized PnL, fees and margin numbers, exact to the quote unit.

Expected values come from backstop.core.margin (the documented rounding rules), and the 6-decimal
cases also spell the numbers out by hand so that a wrong model cannot hide a wrong vault.
"""

import ape
import pytest

from backstop.client.actors import fill, fund, set_price, signed_order, trade
from backstop.core.margin import apply_trade, fee_of, margin_of, position_value, trade_cost
from backstop.core.units import ceil_div, wad


def marks_of(system):
    return {m.id: system.oracle.price(m.id) for m in system.markets.values()}


def assert_account_matches(system, model, owner, segment):
    vault = system.vault
    lens = system.lens
    coll, equity, im, mm = model.health(owner.address, segment, marks_of(system))
    assert vault.collateral(owner, segment) == coll
    assert lens.equity(owner, segment) == equity
    assert lens.margin_requirements(owner, segment) == (im, mm)
    for m in system.markets.values():
        if m.segment == segment:
            assert vault.position(owner, m.id) == model.positions.get((owner.address, m.id), (0, 0))


@pytest.fixture
def ledger(any_funded, make_model, maker, trader, any_usd):
    """A model mirroring any_funded's deposits."""
    model = make_model(any_funded)
    for who in (maker, trader):
        for segment in any_funded.segments.values():
            model.deposit(who.address, segment, any_usd(100_000))
    return model


def model_trade(system, model, maker, taker, label, size, price, amount=None):
    """Fill on chain and in the model; check the Fill event against the model."""
    market = system.markets[label].id
    order = signed_order(system, maker, market, size, price)
    amount = abs(size) if amount is None else amount
    tx = fill(system, order, taker, amount)
    expected = model.fill(maker.address, taker.address, market, size, price, amount)
    (event,) = system.vault.Fill.from_receipt(tx)
    assert event.maker_delta == expected["maker_delta"]
    assert event.maker_fee == expected["maker_fee"]
    assert event.taker_fee == expected["taker_fee"]
    assert event.maker_realized == expected["maker_realized"]
    assert event.taker_realized == expected["taker_realized"]
    return expected


# ---------------------------------------------------------------- reduce / close / flip, by hand (6 decimals)


def test_reduce_realizes_pnl_with_cost_basis_rounded_against_each_side(funded, vault, deployer, maker, trader, eth, majors):
    # open: maker long 3 at 3000.3333334 -> cost floor(3 * 3000.3333334e6) = 9_001_000_000
    trade(funded, maker, trader, eth.id, wad(3), wad("3000.3333334"))
    assert vault.position(maker, eth.id) == (wad(3), 9_001_000_000)
    assert vault.position(trader, eth.id) == (-wad(3), -9_001_000_000)
    trader_fee_open = 4_500_500  # ceil(9_001_000_000 * 5 / 10_000)

    set_price(funded, "ETH-PERP", wad(3100), deployer)
    # reduce: maker sells 1 at 3100 -> closing cost 3_100_000_000
    tx = trade(funded, maker, trader, eth.id, -wad(1), wad(3100))
    (event,) = vault.Fill.from_receipt(tx)
    # maker: released = ceil(9_001_000_000 / 3) = 3_000_333_334 -> realized 99_666_666
    assert event.maker_realized == 3_100_000_000 - 3_000_333_334 == 99_666_666
    # trader: released = ceil(-9_001_000_000 / 3) = -3_000_333_333 -> realized -99_666_667
    assert event.taker_realized == -3_100_000_000 + 3_000_333_333 == -99_666_667
    assert event.taker_fee == 1_550_000
    assert vault.position(maker, eth.id) == (wad(2), 9_001_000_000 - 3_000_333_334)
    assert vault.position(trader, eth.id) == (-wad(2), -9_001_000_000 + 3_000_333_333)
    assert vault.collateral(maker, majors) == 100_000_000_000 + 99_666_666
    assert vault.collateral(trader, majors) == 100_000_000_000 - trader_fee_open - 99_666_667 - 1_550_000


def test_close_realizes_whole_entry(open_eth, vault, lens, deployer, maker, trader, eth, majors, usd):
    set_price(open_eth, "ETH-PERP", wad(2800), deployer)
    tx = trade(open_eth, maker, trader, eth.id, -wad(10), wad("2800.5"))
    (event,) = vault.Fill.from_receipt(tx)
    assert event.maker_realized == usd(28_005) - usd(30_000) == -usd(1995)
    assert event.taker_realized == usd(1995)
    assert vault.position(maker, eth.id) == (0, 0)
    assert vault.position(trader, eth.id) == (0, 0)
    assert vault.collateral(maker, majors) == usd(100_000 - 1995)
    # trader: open fee 15 + close fee ceil(28_005 * 5 / 10_000) = 14.0025
    assert vault.collateral(trader, majors) == usd(100_000) + usd(1995) - usd(15) - usd("14.0025")
    assert lens.margin_requirements(maker, majors) == lens.margin_requirements(trader, majors) == (0, 0)
    assert lens.equity(maker, majors) == vault.collateral(maker, majors)


def test_flip_realizes_closed_part_and_opens_the_rest(funded, vault, lens, deployer, maker, trader, eth, majors):
    trade(funded, maker, trader, eth.id, wad(2), wad(3000))  # maker long 2, entry 6_000_000_000
    set_price(funded, "ETH-PERP", wad(3100), deployer)
    # maker sells 7 at 3100.0000007: cost floor(7 * 3_100_000_000.7) = 21_700_000_004
    tx = trade(funded, maker, trader, eth.id, -wad(7), wad("3100.0000007"))
    (event,) = vault.Fill.from_receipt(tx)
    # maker closing value = ceil(-21_700_000_004 * 2 / 7) = -6_200_000_001
    assert event.maker_realized == 6_200_000_001 - 6_000_000_000
    assert vault.position(maker, eth.id) == (-wad(5), -21_700_000_004 + 6_200_000_001)
    # trader closing value = ceil(21_700_000_004 * 2 / 7) = 6_200_000_002
    assert event.taker_realized == -6_200_000_002 + 6_000_000_000
    assert vault.position(trader, eth.id) == (wad(5), 21_700_000_004 - 6_200_000_002)
    assert lens.open_interest(eth.id) == wad(5)


def test_rounding_never_credits_more_than_it_debits(funded, vault, deployer, maker, trader, eth):
    trade(funded, maker, trader, eth.id, wad(3), wad("3000.3333334"))
    tx = trade(funded, maker, trader, eth.id, -wad(1), wad(3000))
    (event,) = vault.Fill.from_receipt(tx)
    assert event.maker_realized + event.taker_realized <= 0
    assert event.maker_realized + event.taker_realized == -1


# ---------------------------------------------------------------- the same against the model, both decimals


def test_sequence_of_fills_matches_model(any_funded, ledger, deployer, maker, trader, any_usd):
    system = any_funded
    majors, alts = system.segments["majors"], system.segments["alts"]
    steps = [
        ("ETH-PERP", wad("3.3333333"), wad("3000.3333334"), None, None),
        ("ETH-PERP", -wad("1.1111111"), wad("3010.7777777"), None, wad("3005")),
        ("BTC-PERP", -wad("0.1234567"), wad("60001.0000003"), None, None),
        ("ETH-PERP", -wad("5.5"), wad("2999.9999999"), None, wad("2990")),  # flip
        ("BTC-PERP", wad("0.5"), wad("59999.5"), wad("0.1234567"), wad("61000")),  # close of a bigger order
        ("SOL-PERP", wad("100.0000001"), wad("150.0000003"), None, None),
        ("ETH-PERP", wad("3.2777778"), wad("2990.5"), None, None),  # exact close of the flip
    ]
    for label, size, price, amount, new_mark in steps:
        if new_mark is not None:
            set_price(system, label, new_mark, deployer)
        model_trade(system, ledger, maker, trader, label, size, price, amount)
        for who in (maker, trader):
            assert_account_matches(system, ledger, who, majors)
            assert_account_matches(system, ledger, who, alts)
    for m in system.markets.values():
        assert system.lens.accrued_fees(m.id) == ledger.fees.get(m.id, 0)
        assert system.lens.open_interest(m.id) == ledger.open_interest(m.id)


def test_reduce_then_close_round_trip_matches_model(any_funded, ledger, deployer, maker, trader):
    system = any_funded
    majors = system.segments["majors"]
    model_trade(system, ledger, trader, maker, "ETH-PERP", -wad(7), wad("3000.0000001"))
    set_price(system, "ETH-PERP", wad("3123.4567891"), deployer)
    for _ in range(3):
        model_trade(system, ledger, trader, maker, "ETH-PERP", wad(2), wad("3123.4567891"))
    model_trade(system, ledger, trader, maker, "ETH-PERP", wad(1), wad("3123.4567891"))
    assert system.vault.position(trader, system.markets["ETH-PERP"].id) == (0, 0)
    assert_account_matches(system, ledger, trader, majors)
    assert_account_matches(system, ledger, maker, majors)


# ---------------------------------------------------------------- equity, IM and MM formulas


def test_equity_and_margins_of_a_short_round_against_the_trader(funded, vault, lens, deployer, maker, trader, eth, majors):
    trade(funded, maker, trader, eth.id, wad("0.3333333"), wad(3000))
    mark = wad("3000.0000007")
    set_price(funded, "ETH-PERP", mark, deployer)
    # answer has 8 decimals: 3000.0000007 -> 300000000007 (exact)
    size, entry = vault.position(trader, eth.id)
    value = position_value(size, mark, 6)  # floor of a negative number
    assert value == -((wad("0.3333333") * mark + 10**30 - 1) // 10**30)
    coll = vault.collateral(trader, majors)
    assert lens.equity(trader, majors) == coll + value - entry
    notional = ceil_div(abs(size) * mark, 10**30)
    assert lens.margin_requirements(trader, majors) == (ceil_div(notional * wad("0.1"), wad(1)), ceil_div(notional * wad("0.05"), wad(1)))
    assert lens.margin_requirements(trader, majors) == lens.margin_requirements(maker, majors)


def test_margin_requirements_sum_over_markets(open_eth, vault, lens, maker, trader, btc, majors, usd):
    trade(open_eth, maker, trader, btc.id, -wad("0.5"), wad(60000))
    # ETH 10 * 3000 = 30,000, BTC 0.5 * 60,000 = 30,000
    assert lens.margin_requirements(maker, majors) == (usd(6000), usd(3000))
    assert lens.margin_requirements(trader, majors) == (usd(6000), usd(3000))


def test_unrealized_pnl_follows_the_oracle(any_funded, deployer, maker, trader, any_usd):
    system, vault = any_funded, any_funded.vault
    lens = any_funded.lens
    eth, majors = system.markets["ETH-PERP"], system.segments["majors"]
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    set_price(system, "ETH-PERP", wad(3150), deployer)
    assert lens.equity(maker, majors) == any_usd(100_000 + 1500)
    assert lens.equity(trader, majors) == any_usd(100_000 - 1500 - 15)
    assert vault.collateral(maker, majors) == any_usd(100_000)  # nothing realized
    assert lens.margin_requirements(maker, majors) == (any_usd(3150), any_usd(1575))


# ---------------------------------------------------------------- fees


def test_fees_accrue_per_market(any_funded, maker, trader, any_usd):
    system, vault = any_funded, any_funded.vault
    lens = any_funded.lens
    eth, btc, sol = (system.markets[x] for x in ("ETH-PERP", "BTC-PERP", "SOL-PERP"))
    trade(system, maker, trader, eth.id, wad(10), wad(3000))  # 30,000 -> 15
    trade(system, maker, trader, btc.id, wad(1), wad(60000))  # 60,000 -> 30
    trade(system, trader, maker, eth.id, wad(2), wad(3000))  # 6,000 -> 3 (maker pays taker fee)
    assert lens.accrued_fees(eth.id) == any_usd(18)
    assert lens.accrued_fees(btc.id) == any_usd(30)
    assert lens.accrued_fees(sol.id) == 0
    assert vault.collateral(maker, system.segments["majors"]) == any_usd(100_000 - 3)


def test_maker_and_taker_fees_are_rounded_up(funded, vault, configurator, lens, deployer, maker, trader, eth, majors, params):
    configurator.set_market_params(eth.id, params(funded, "ETH-PERP", maker_fee_bps=3, taker_fee_bps=7), sender=deployer)
    amount = wad("0.001000001")  # cost floor(0.001000001 * 3000e6) = 3_000_003
    cost = trade_cost(amount, wad(3000), 6)
    assert cost == 3_000_003
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    tx = fill(funded, order, trader, amount)
    (event,) = vault.Fill.from_receipt(tx)
    assert event.maker_fee == 901 == fee_of(cost, 3)  # 900.0009 -> 901
    assert event.taker_fee == 2101 == fee_of(cost, 7)  # 2100.0021 -> 2101
    assert lens.accrued_fees(eth.id) == 901 + 2101
    assert vault.collateral(maker, majors) == 100_000_000_000 - 901
    assert vault.collateral(trader, majors) == 100_000_000_000 - 2101


def test_smallest_fill_still_pays_one_unit_of_fee(funded, vault, maker, trader, eth):
    amount = -((-(10**30)) // wad(3000))  # costs 1 quote unit
    tx = fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader, amount)
    assert vault.Fill.from_receipt(tx)[0].taker_fee == 1


def _split(vault, fees):
    """(to pool, to treasury) of swept fees, as documented: pool gets pool_fee_share_bps, rounded down."""
    to_pool = fees * vault.pool_fee_share_bps() // 10_000
    return to_pool, fees - to_pool


def _pool_side(system, label):
    """Tokens held by a segment pool plus the shared backstop (the pool forwards a share)."""
    return system.token.balanceOf(system.pools[label]) + system.token.balanceOf(system.backstop)


def test_sweep_fees_splits_between_pool_and_treasury(any_funded, maker, trader, treasury, any_usd):
    system, vault, token = any_funded, any_funded.vault, any_funded.token
    lens = any_funded.lens
    eth, btc, sol = (system.markets[x] for x in ("ETH-PERP", "BTC-PERP", "SOL-PERP"))
    majors = system.segments["majors"]
    trade(system, maker, trader, eth.id, wad(10), wad("3000.1234567"))
    trade(system, maker, trader, btc.id, wad(1), wad(60000))
    trade(system, maker, trader, sol.id, wad(100), wad(150))  # alts: 7.5
    fees = lens.accrued_fees(eth.id) + lens.accrued_fees(btc.id)
    assert fees == fee_of(trade_cost(wad(10), wad("3000.1234567"), system.decimals), 5) + any_usd(30)
    to_pool, to_treasury = _split(vault, fees)
    assert to_pool > 0 and to_treasury > 0
    treasury_before, pool_before, vault_before = token.balanceOf(treasury), _pool_side(system, "majors"), token.balanceOf(vault)

    tx = vault.sweep_fees(majors, sender=trader)  # anyone may sweep

    assert tx.return_value == fees
    assert token.balanceOf(treasury) - treasury_before == to_treasury
    assert _pool_side(system, "majors") - pool_before == to_pool
    assert token.balanceOf(vault) == vault_before - fees
    assert lens.accrued_fees(eth.id) == 0 and lens.accrued_fees(btc.id) == 0
    assert lens.accrued_fees(sol.id) == any_usd("7.5")  # other segment untouched
    (event,) = vault.FeesSwept.from_receipt(tx)
    assert (event.segment, event.to_pool, event.to_treasury) == (majors, to_pool, to_treasury)


def test_sweep_with_nothing_accrued_moves_nothing(funded, vault, token, treasury, alts):
    before = token.balanceOf(treasury)
    tx = vault.sweep_fees(alts, sender=treasury)
    assert token.balanceOf(treasury) == before
    (event,) = vault.FeesSwept.from_receipt(tx)
    assert (event.segment, event.to_pool, event.to_treasury) == (alts, 0, 0)


def test_sweep_pays_the_current_treasury(open_eth, vault, configurator, token, deployer, other, majors, usd):
    configurator.set_treasury(other, sender=deployer)
    vault.sweep_fees(majors, sender=deployer)
    assert token.balanceOf(other) == _split(vault, usd(15))[1]


def test_sweep_with_full_pool_share_pays_only_the_pool(open_eth, vault, configurator, token, deployer, treasury, majors, usd):
    configurator.set_pool_fee_share(10_000, sender=deployer)
    before, pool_before = token.balanceOf(treasury), _pool_side(open_eth, "majors")
    vault.sweep_fees(majors, sender=deployer)
    assert token.balanceOf(treasury) == before
    assert _pool_side(open_eth, "majors") - pool_before == usd(15)


def test_sweep_of_segment_without_pool_pays_everything_to_treasury(project, funded, vault, configurator, token, deployer, maker, trader, treasury, usd):
    segment = configurator.add_segment("no-pool", sender=deployer).return_value
    market_id = vault.market_count()
    feed = project.MockAggregator.deploy(8, "X", 100 * 10**8, sender=deployer)
    funded.oracle.set_feed(market_id, feed, 3600, 1, wad(10**6), sender=deployer)
    configurator.add_market("X-PERP", segment, (segment, wad("0.1"), wad("0.05"), 5, 0, 1000, 10**6, 0), sender=deployer)
    assert vault.segment_pool(segment) == ape.utils.ZERO_ADDRESS
    for who in (maker, trader):
        fund(funded, who, segment, usd(10_000))
    trade(funded, maker, trader, market_id, wad(100), wad(100))  # 10,000 notional -> fee 5
    before = token.balanceOf(treasury)

    tx = vault.sweep_fees(segment, sender=deployer)

    assert token.balanceOf(treasury) - before == usd(5)
    (event,) = vault.FeesSwept.from_receipt(tx)
    assert (event.to_pool, event.to_treasury) == (0, usd(5))


def test_sweep_unknown_segment_reverts(vault, trader):
    with ape.reverts("vault: unknown segment"):
        vault.sweep_fees(vault.segment_count(), sender=trader)


# ---------------------------------------------------------------- segment isolation


def test_loss_in_one_segment_leaves_the_other_account_untouched(funded, vault, lens, deployer, maker, trader, eth, sol, majors, alts, usd):
    trade(funded, maker, trader, eth.id, wad(10), wad(3000))
    trade(funded, maker, trader, sol.id, wad(500), wad(150))
    majors_before = (vault.collateral(maker, majors), lens.equity(maker, majors), lens.margin_requirements(maker, majors))

    set_price(funded, "SOL-PERP", wad(100), deployer)  # maker loses 25,000 in alts
    assert lens.equity(maker, alts) == usd(100_000 - 25_000)
    assert (vault.collateral(maker, majors), lens.equity(maker, majors), lens.margin_requirements(maker, majors)) == majors_before

    trade(funded, maker, trader, sol.id, -wad(500), wad(100))  # realize it
    assert vault.collateral(maker, alts) == usd(75_000)
    assert (vault.collateral(maker, majors), lens.equity(maker, majors), lens.margin_requirements(maker, majors)) == majors_before


def test_alts_collateral_does_not_margin_majors_positions(funded, vault, maker, attacker, eth, alts, usd):
    fund(funded, attacker, alts, usd(1_000_000))  # rich in alts, nothing in majors
    with ape.reverts("vault: below initial margin"):
        trade(funded, attacker, maker, eth.id, wad(1), wad(3000))


def test_accrued_fees_at_packing_limit_revert_until_swept(system18, deployer, maker, trader, params):
    """Fees are packed in 80 bits (~1.2M units of an 18-decimal token): a fill that would overflow
    reverts instead of wrapping, and a (permissionless) sweep unblocks the market."""
    system, vault = system18, system18.vault
    configurator = system18.configurator
    lens = system18.lens
    eth, majors = system.markets["ETH-PERP"], system.segments["majors"]
    configurator.set_market_params(eth.id, params(system, "ETH-PERP", taker_fee_bps=100, maker_fee_bps=100), sender=deployer)
    for who in (maker, trader):
        fund(system, who, majors, wad(20_000_000))
    trade(system, maker, trader, eth.id, wad(20_000), wad(3000))  # fees 2 * 600,000
    assert lens.accrued_fees(eth.id) == wad(1_200_000) < 2**80
    with ape.reverts("packing: market state overflow"):
        trade(system, trader, maker, eth.id, wad(1000), wad(3000))  # +60,000 would pass 2**80
    vault.sweep_fees(majors, sender=trader)
    trade(system, trader, maker, eth.id, wad(1000), wad(3000))
    assert lens.accrued_fees(eth.id) == wad(60_000)
