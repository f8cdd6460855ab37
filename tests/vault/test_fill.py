"""fill: happy paths, every validation branch, margin checks and oracle failures."""

from dataclasses import replace

import ape
import pytest

from backstop.client.actors import fill, fund, set_price, signed_order, trade
from backstop.core.orders import build_order, sign_order
from backstop.core.units import wad


def _cost(system, amount, price):
    return amount * price // 10 ** (36 - system.decimals)


def _fee(cost, bps):
    return -((-cost * bps) // 10_000)


# ---------------------------------------------------------------- happy paths


@pytest.mark.parametrize("side", [1, -1], ids=["maker_buys", "maker_sells"])
def test_full_fill_opens_positions_records_filled_and_emits_event(any_funded, maker, trader, side):
    system, vault = any_funded, any_funded.vault
    lens = any_funded.lens
    eth = system.markets["ETH-PERP"]
    order = signed_order(system, maker, eth.id, side * wad(2), wad(3000))
    digest = vault.order_hash(order.as_tuple())

    tx = fill(system, order, trader)

    cost = _cost(system, wad(2), wad(3000))
    assert vault.position(maker, eth.id) == (side * wad(2), side * cost)
    assert vault.position(trader, eth.id) == (-side * wad(2), -side * cost)
    assert vault.filled(digest) == wad(2)
    assert lens.open_interest(eth.id) == wad(2)
    (event,) = vault.Fill.from_receipt(tx)
    assert event.order_hash == digest
    assert event.maker == maker.address
    assert event.taker == trader.address
    assert event.market == eth.id
    assert event.maker_delta == side * wad(2)
    assert event.price == wad(3000)
    assert event.maker_fee == 0
    assert event.taker_fee == _fee(cost, 5) == cost * 5 // 10_000
    assert event.maker_realized == 0 and event.taker_realized == 0


def test_partial_fills_accumulate_until_full(funded, vault, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, -wad(2), wad(3000))
    digest = vault.order_hash(order.as_tuple())

    fill(funded, order, trader, wad("0.5"))
    assert vault.filled(digest) == wad("0.5")
    fill(funded, order, trader, wad(1))
    assert vault.filled(digest) == wad("1.5")
    assert vault.position(maker, eth.id)[0] == -wad("1.5")
    assert vault.position(trader, eth.id)[0] == wad("1.5")

    fill(funded, order, trader, wad("0.5"))
    assert vault.filled(digest) == wad(2)
    assert vault.position(maker, eth.id)[0] == -wad(2)


def test_partial_fills_by_different_takers_share_the_order(funded, vault, maker, trader, attacker, eth, majors, usd):
    fund(funded, attacker, majors, usd(10_000))
    order = signed_order(funded, maker, eth.id, wad(3), wad(3000))
    fill(funded, order, trader, wad(1))
    fill(funded, order, attacker, wad(2))
    assert vault.filled(vault.order_hash(order.as_tuple())) == wad(3)
    assert vault.position(trader, eth.id)[0] == -wad(1)
    assert vault.position(attacker, eth.id)[0] == -wad(2)
    assert vault.position(maker, eth.id)[0] == wad(3)


# ---------------------------------------------------------------- order validation


def test_fill_zero_amount_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: zero amount"):
        fill(funded, order, trader, 0)


def test_fill_zero_order_size_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, 0, wad(3000))
    with ape.reverts("vault: bad order size"):
        fill(funded, order, trader, wad(1))


def test_expired_order_reverts(funded, chain, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000), expiry=chain.pending_timestamp - 1)
    with ape.reverts("vault: order expired"):
        fill(funded, order, trader)


def test_order_fillable_in_the_block_of_its_expiry(funded, vault, chain, maker, trader, eth):
    expiry = chain.pending_timestamp + 60
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000), expiry=expiry)
    chain.pending_timestamp = expiry
    fill(funded, order, trader)
    assert vault.position(maker, eth.id)[0] == wad(1)


def test_order_expires_after_time_passes(funded, chain, maker, trader, eth):
    expiry = chain.pending_timestamp + 60
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000), expiry=expiry)
    chain.pending_timestamp = expiry + 1
    with ape.reverts("vault: order expired"):
        fill(funded, order, trader)


def test_cancelled_order_reverts(funded, vault, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    vault.cancel(order.as_tuple(), sender=maker)
    with ape.reverts("vault: order cancelled"):
        fill(funded, order, trader)


def test_cancel_stops_the_unfilled_rest_of_a_partly_filled_order(funded, vault, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(2), wad(3000))
    fill(funded, order, trader, wad(1))
    vault.cancel(order.as_tuple(), sender=maker)
    with ape.reverts("vault: order cancelled"):
        fill(funded, order, trader, wad(1))
    assert vault.position(maker, eth.id)[0] == wad(1)


def test_overfill_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: overfill"):
        fill(funded, order, trader, wad(1) + 1)


def test_overfill_after_partial_fill_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    fill(funded, order, trader, wad("0.6"))
    with ape.reverts("vault: overfill"):
        fill(funded, order, trader, wad("0.4") + 1)


def test_replay_of_fully_filled_order_reverts(funded, vault, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    fill(funded, order, trader)
    with ape.reverts("vault: overfill"):
        fill(funded, order, trader)
    assert vault.position(maker, eth.id)[0] == wad(1)


def test_order_signed_by_another_account_reverts(funded, chain, vault, maker, trader, attacker, eth):
    order = build_order(
        maker=maker.address, market=eth.id, size=wad(1), price=wad(3000), nonce=777,
        chain_id=chain.chain_id, vault=vault.address,
    )
    forged = sign_order(attacker, order)  # attacker signs an order in the maker's name
    with ape.reverts("vault: bad signature"):
        fill(funded, forged, trader)
    assert vault.position(maker, eth.id)[0] == 0


def test_order_signed_for_another_vault_reverts(funded, chain, system18, maker, trader, eth):
    order = build_order(
        maker=maker.address, market=eth.id, size=wad(1), price=wad(3000), nonce=778,
        chain_id=chain.chain_id, vault=system18.vault.address,
    )
    with ape.reverts("vault: bad signature"):
        fill(funded, sign_order(maker, order), trader)


@pytest.mark.parametrize(
    "field, value",
    [
        ("size", wad(2)),
        ("price", wad(2990)),
        ("nonce", 123456789),
        ("expiry", 2**64 + 1),
        ("reduce_only", True),
        ("market", 1),
        ("maker", "attacker"),
    ],
)
def test_tampered_order_field_reverts_bad_signature(funded, vault, maker, trader, attacker, eth, field, value):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    if value == "attacker":
        value = attacker.address
    tampered = replace(order, **{field: value})
    with ape.reverts("vault: bad signature"):
        fill(funded, tampered, trader, wad(1))


def test_truncated_signature_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: bad signature"):
        fill(funded, replace(order, signature=order.signature[:32]), trader)


def test_order_with_zero_maker_and_empty_signature_is_rejected(funded, vault, deployer, attacker, eth, majors, usd):
    """BUG PIN: snekmate's ecdsa._recover_sig returns empty(address) for a signature that is
    neither 64 nor 65 bytes long, so an order whose maker is address(0) "verifies" with an
    empty signature. Anyone can then open positions for address(0), an account nobody owns
    or maintains. A buy 10% under the mark meets IM for a collateral-less account."""
    fund(funded, attacker, majors, usd(10_000))
    order = (ape.utils.ZERO_ADDRESS, eth.id, wad(1), wad(2700), 1, 2**64, False)
    with ape.reverts("vault: bad signature"):
        vault.fill(order, b"", wad(1), sender=attacker)
    assert vault.position(ape.utils.ZERO_ADDRESS, eth.id)[0] == 0


def test_self_match_reverts(funded, maker, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: self-match"):
        fill(funded, order, maker)


def test_unknown_market_reverts(funded, vault, maker, trader):
    order = signed_order(funded, maker, vault.market_count(), wad(1), wad(3000))
    with ape.reverts("vault: unknown market"):
        fill(funded, order, trader)


def test_fill_while_paused_only_reduces(funded, vault, deployer, maker, trader, eth):
    """Reduce-only mode (issue 9.5): while paused an opening (or increasing, or one-sided
    reducing) fill reverts; a fill that reduces both sides goes through."""
    trade(funded, maker, trader, eth.id, wad(2), wad(3000))  # maker long 2, trader short 2
    vault.pause(sender=deployer)
    with ape.reverts("vault: paused, reduce-only"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)
    with ape.reverts("vault: paused, reduce-only"):  # the maker reduces, the taker (flat) opens
        fill(funded, signed_order(funded, maker, eth.id, -wad(1), wad(3000)), deployer)
    fill(funded, signed_order(funded, maker, eth.id, -wad(1), wad(3000)), trader)
    assert int(vault.position(maker, eth.id)[0]) == wad(1)
    assert int(vault.position(trader, eth.id)[0]) == -wad(1)


# ---------------------------------------------------------------- price band and dust


@pytest.mark.parametrize("price", [wad(2700), wad(3300)], ids=["band_low", "band_high"])
def test_price_at_band_edge_fills(funded, vault, maker, trader, eth, price):
    fill(funded, signed_order(funded, maker, eth.id, wad(1), price), trader)
    assert vault.position(maker, eth.id)[0] == wad(1)


@pytest.mark.parametrize("price", [wad(2700) - 1, wad(3300) + 1], ids=["below_band", "above_band"])
def test_price_outside_band_reverts(funded, maker, trader, eth, price):
    with ape.reverts("vault: price outside band"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), price), trader)


def test_band_follows_the_oracle(funded, deployer, maker, trader, eth):
    set_price(funded, "ETH-PERP", wad(4000), deployer)
    with ape.reverts("vault: price outside band"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)


def test_dust_fill_reverts(funded, maker, trader, eth):
    # 6 decimals: 1 wei of ETH at 3,000 costs 3000e18 // 1e30 == 0 quote units
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    with ape.reverts("vault: dust fill"):
        fill(funded, order, trader, 1)


def test_smallest_non_dust_fill_settles(funded, vault, maker, trader, eth):
    amount = -((-(10**30)) // wad(3000))  # ceil(1e30 / 3000e18): costs exactly 1 quote unit
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    fill(funded, order, trader, amount)
    assert vault.position(maker, eth.id) == (amount, 1)
    with ape.reverts("vault: dust fill"):
        fill(funded, order, trader, amount - 1)


# ---------------------------------------------------------------- reduce-only


def test_reduce_only_without_position_reverts(funded, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, -wad(1), wad(3000), reduce_only=True)
    with ape.reverts("vault: not reduce-only"):
        fill(funded, order, trader)


def test_reduce_only_that_increases_reverts(open_eth, maker, trader, eth):
    order = signed_order(open_eth, maker, eth.id, wad(1), wad(3000), reduce_only=True)  # maker is long
    with ape.reverts("vault: not reduce-only"):
        fill(open_eth, order, trader)


def test_reduce_only_that_flips_reverts(open_eth, maker, trader, eth):
    order = signed_order(open_eth, maker, eth.id, -wad(11), wad(3000), reduce_only=True)
    with ape.reverts("vault: not reduce-only"):
        fill(open_eth, order, trader)


def test_reduce_only_reduces_and_closes(open_eth, vault, maker, trader, eth):
    order = signed_order(open_eth, maker, eth.id, -wad(10), wad(3000), reduce_only=True)
    fill(open_eth, order, trader, wad(4))
    assert vault.position(maker, eth.id)[0] == wad(6)
    fill(open_eth, order, trader, wad(6))
    assert vault.position(maker, eth.id) == (0, 0)


def test_reduce_only_of_larger_size_may_fill_up_to_the_position(open_eth, vault, maker, trader, eth):
    order = signed_order(open_eth, maker, eth.id, -wad(15), wad(3000), reduce_only=True)
    fill(open_eth, order, trader, wad(10))
    assert vault.position(maker, eth.id)[0] == 0
    with ape.reverts("vault: not reduce-only"):
        fill(open_eth, order, trader, wad(1))


# ---------------------------------------------------------------- open interest cap


def test_open_interest_cap(funded, vault, configurator, lens, deployer, maker, trader, attacker, eth, majors, usd, params):
    configurator.set_market_params(eth.id, params(funded, "ETH-PERP", max_open_interest=5), sender=deployer)
    trade(funded, maker, trader, eth.id, wad(5), wad(3000))
    assert lens.open_interest(eth.id) == wad(5)
    with ape.reverts("vault: open interest cap"):
        trade(funded, maker, trader, eth.id, wad(1), wad(3000))
    # position moving between accounts at the cap does not raise open interest
    fund(funded, attacker, majors, usd(10_000))
    trade(funded, attacker, maker, eth.id, wad(2), wad(3000))
    assert lens.open_interest(eth.id) == wad(5)
    # reducing is always allowed
    trade(funded, maker, trader, eth.id, -wad(3), wad(3000))
    assert lens.open_interest(eth.id) == wad(2)


def test_open_interest_cap_lowered_below_current_blocks_increases_only(open_eth, vault, configurator, lens, deployer, maker, trader, eth, params):
    configurator.set_market_params(eth.id, params(open_eth, "ETH-PERP", max_open_interest=1), sender=deployer)
    with ape.reverts("vault: open interest cap"):
        trade(open_eth, maker, trader, eth.id, wad("0.1"), wad(3000))
    trade(open_eth, maker, trader, eth.id, -wad(9), wad(3000))
    assert lens.open_interest(eth.id) == wad(1)


# ---------------------------------------------------------------- initial margin


def test_maker_at_exactly_initial_margin_fills(funded, vault, lens, attacker, trader, eth, majors, usd):
    fund(funded, attacker, majors, usd(300))  # IM of 1 ETH at 3,000 = 300, maker fee 0
    trade(funded, attacker, trader, eth.id, wad(1), wad(3000))
    assert lens.equity(attacker, majors) == lens.margin_requirements(attacker, majors)[0] == usd(300)


def test_maker_below_initial_margin_reverts(funded, attacker, trader, eth, majors, usd):
    fund(funded, attacker, majors, usd(300))
    with ape.reverts("vault: below initial margin"):
        trade(funded, attacker, trader, eth.id, wad("1.000001"), wad(3000))


def test_taker_at_exactly_initial_margin_fills(funded, vault, lens, maker, attacker, eth, majors, usd):
    fund(funded, attacker, majors, usd("301.5"))  # IM 300 + taker fee 1.5
    trade(funded, maker, attacker, eth.id, wad(1), wad(3000))
    assert lens.equity(attacker, majors) == usd(300)


def test_taker_below_initial_margin_reverts(funded, maker, attacker, eth, majors, usd):
    fund(funded, attacker, majors, usd("301.5") - 1)
    with ape.reverts("vault: below initial margin"):
        trade(funded, maker, attacker, eth.id, wad(1), wad(3000))


def test_taker_without_collateral_reverts(funded, maker, attacker, eth):
    with ape.reverts("vault: below initial margin"):
        trade(funded, maker, attacker, eth.id, wad(1), wad(3000))


def test_initial_margin_counts_every_market_of_the_segment(funded, vault, lens, maker, attacker, eth, btc, majors, usd):
    fund(funded, attacker, majors, usd(600) + usd("1.5"))
    trade(funded, attacker, maker, eth.id, wad(1), wad(3000))  # attacker maker: IM 300, no fee
    trade(funded, attacker, maker, btc.id, wad("0.005"), wad(60000))  # IM 30
    with ape.reverts("vault: below initial margin"):
        trade(funded, attacker, maker, btc.id, wad("0.05"), wad(60000))  # would need 300 more
    assert lens.margin_requirements(attacker, majors)[0] == usd(330)


@pytest.fixture
def underwater(funded, deployer, attacker, trader, eth, majors, usd):
    """Attacker long 1 ETH from 3,000 with 300 collateral; mark 2,900: equity 200 < IM 290."""
    fund(funded, attacker, majors, usd(300))
    trade(funded, attacker, trader, eth.id, wad(1), wad(3000))
    set_price(funded, "ETH-PERP", wad(2900), deployer)
    return funded


def test_underwater_fixture_is_below_initial_margin(underwater, vault, lens, attacker, majors, usd):
    assert lens.equity(attacker, majors) == usd(200)
    assert lens.margin_requirements(attacker, majors) == (usd(290), usd(145))


def test_risk_reducing_fill_allowed_below_initial_margin(underwater, vault, lens, attacker, trader, eth, majors, usd):
    trade(underwater, attacker, trader, eth.id, -wad("0.1"), wad(2900))  # maker sells 0.1 at mark
    assert vault.position(attacker, eth.id)[0] == wad("0.9")
    equity, (im, mm) = lens.equity(attacker, majors), lens.margin_requirements(attacker, majors)
    assert equity == usd(200) and im == usd(261) and mm == usd("130.5")
    assert equity < im  # still below IM: allowed because it reduced risk


def test_risk_reducing_fill_as_taker_allowed_below_initial_margin(underwater, vault, lens, attacker, trader, eth, majors, usd):
    trade(underwater, trader, attacker, eth.id, wad("0.1"), wad(2900))  # attacker takes: sells 0.1
    assert vault.position(attacker, eth.id)[0] == wad("0.9")
    assert lens.equity(attacker, majors) == usd(200) - usd("0.145")


def test_risk_increasing_fill_below_initial_margin_reverts(underwater, attacker, trader, eth):
    with ape.reverts("vault: below initial margin"):
        trade(underwater, attacker, trader, eth.id, wad("0.01"), wad(2900))


def test_reducing_fill_that_lowers_margin_ratio_reverts(underwater, attacker, trader, eth):
    # selling 0.1 at 2,610 (band edge) realizes 29 below mark: 171/130.5 < 200/145
    with ape.reverts("vault: below initial margin"):
        trade(underwater, attacker, trader, eth.id, -wad("0.1"), wad(2610))


def test_flip_below_initial_margin_reverts(underwater, attacker, trader, eth):
    # short 0.75 afterwards: IM 217.5 > equity 200, and a flip is never a pure reduction
    with ape.reverts("vault: below initial margin"):
        trade(underwater, attacker, trader, eth.id, -wad("1.75"), wad(2900))


def test_flip_that_meets_initial_margin_is_allowed(underwater, vault, attacker, trader, eth, majors):
    trade(underwater, attacker, trader, eth.id, -wad("1.5"), wad(2900))  # short 0.5: IM 145 <= 200
    assert vault.position(attacker, eth.id)[0] == -wad("0.5")


def test_full_close_below_initial_margin_allowed(underwater, vault, lens, attacker, trader, eth, majors, usd):
    trade(underwater, attacker, trader, eth.id, -wad(1), wad(2900))
    assert vault.position(attacker, eth.id) == (0, 0)
    assert vault.collateral(attacker, majors) == usd(200)
    assert lens.margin_requirements(attacker, majors) == (0, 0)
    assert lens.equity(attacker, majors) == usd(200)


# ---------------------------------------------------------------- oracle failures seen by fill


def test_fill_with_stale_round_reverts(funded, chain, deployer, maker, trader, eth):
    eth.feed.set_round(3000 * 10**8, chain.pending_timestamp - 3601 - 5, sender=deployer)
    with ape.reverts("oracle: stale price"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)


def test_fill_after_heartbeat_passes_reverts(funded, chain, maker, trader, eth):
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    chain.pending_timestamp += 3601
    with ape.reverts("oracle: stale price"):
        fill(funded, order, trader)


def test_fill_after_fresh_round_succeeds_again(funded, vault, chain, deployer, maker, trader, eth):
    chain.pending_timestamp += 3601
    chain.mine()
    set_price(funded, "ETH-PERP", wad(3000), deployer)
    fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)
    assert vault.position(maker, eth.id)[0] == wad(1)


@pytest.mark.parametrize("answer", [0, -1, -3000 * 10**8])
def test_fill_with_non_positive_oracle_answer_reverts(funded, deployer, maker, trader, eth, answer):
    eth.feed.set_answer(answer, sender=deployer)
    with ape.reverts("oracle: non-positive price"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)


def test_fill_with_oracle_out_of_bounds_reverts(funded, deployer, maker, trader, eth):
    eth.feed.set_answer(10_000_001 * 10**8, sender=deployer)  # max price 10,000,000
    with ape.reverts("oracle: price out of bounds"):
        fill(funded, signed_order(funded, maker, eth.id, wad(1), wad(3000)), trader)


def test_broken_feed_values_open_positions_at_its_bounds_against_the_account(open_eth, deployer, maker, trader, btc,
                                                                              eth):
    """Issue 9.4: a non-positive ETH answer no longer freezes the account; ETH is valued at
    the feed's bounds against each side (the trader's short at the max bound), so a BTC fill
    that would need that margin reverts on the margin check, not on the oracle."""
    eth.feed.set_answer(0, sender=deployer)
    with ape.reverts("vault: below initial margin"):
        trade(open_eth, maker, trader, btc.id, wad("0.1"), wad(60000))


def test_stale_feed_is_valued_at_a_haircut_and_blocks_only_withdrawals(open_eth, chain, deployer, maker, trader, btc,
                                                                         eth, majors, usd):
    """Issue 9.4: a stale ETH round is valued 25% against each holder (short at 3,750, long at
    2,250); a BTC fill with ample margin still goes through, a withdrawal of an account
    holding ETH reverts with the oracle's reason (it must not be valued on a guess)."""
    vault = open_eth.vault
    fresh = {a: int(vault.account_health(a, majors).equity) for a in (maker, trader)}
    answer = 3000 * 10 ** int(eth.feed.decimals())
    eth.feed.set_round(answer, chain.pending_timestamp - 2 * 3600, sender=deployer)
    haircut = int(open_eth.oracle.STALE_HAIRCUT_BPS())
    assert tuple(open_eth.oracle.price_range(eth.id)) == (
        wad(3000) * (10_000 - haircut) // 10_000, wad(3000) * (10_000 + haircut) // 10_000
    )
    move = usd(30_000) * haircut // 10_000  # 10 ETH x 750
    assert int(vault.account_health(trader, majors).equity) == fresh[trader] - move
    assert int(vault.account_health(maker, majors).equity) == fresh[maker] - move
    trade(open_eth, maker, trader, btc.id, wad("0.1"), wad(60000))
    assert int(vault.position(trader, btc.id)[0]) == -wad("0.1")
    with ape.reverts("oracle: stale price"):
        vault.withdraw(majors, usd(1), sender=trader)
