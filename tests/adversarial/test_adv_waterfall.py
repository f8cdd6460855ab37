"""Issue 9 regressions: the waterfall's edge cases, each replayed as an attacker or a keeper
would, with the rule it broke (docs/liquidation.md). Every test fails on 8836abe.

1. segment isolation in tokens (pump, realize, withdraw)   5. pause does not punish the paused
2. ADL never bankrupts a bystander                          6. keepers are never paid to wait
3. no dead ends                                             7. stale flags start no auction
4. one bad feed never freezes other markets                 8. fees never create bad debt
"""

from __future__ import annotations

import ape
import pytest
from ape import chain

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import WAD, wad

from adv_helpers import events



def _equity(system, owner, segment) -> int:
    return int(system.vault.account_health(owner, segment).equity)


def _cash(system, segment) -> int:
    return int(system.lens.segment_cash(segment)[0])


# ---------------------------------------------------------------- 1. isolation in tokens


@pytest.fixture
def pumped(funded, system, deployer, attacker, attacker2, other, alts, usd, sol):
    """The issue's scenario: the alts attacker holds 1,000 SOL long (attacker) and short
    (attacker2) at 150 with 20,000 each; an honest buyer (other) has 100,000 in alts. The SOL
    oracle goes to 750 in one update and, in the same block for all a keeper can do, the
    attacker sells the long to the honest buyer at 750 (realizing +600,000)."""
    fund(system, attacker, alts, usd(20_000))
    fund(system, attacker2, alts, usd(20_000))
    fund(system, other, alts, usd(100_000))
    trade(system, attacker, attacker2, sol.id, wad(1_000), wad(150))
    set_price(system, "SOL-PERP", wad(750), deployer)
    trade(system, attacker, other, sol.id, -wad(1_000), wad(750))
    assert int(system.vault.collateral(attacker, alts)) > usd(600_000)
    return system


def test_pump_realize_withdraw_takes_at_most_its_own_segment(pumped, maker, trader, attacker, attacker2, majors,
                                                              alts, usd, books):
    """Regression 9.1: the attacker's realized 620,000 can only be paid from the alts
    segment's own tokens; every majors depositor still withdraws in full afterwards."""
    system = pumped
    claims = int(system.vault.collateral(attacker, alts))
    with ape.reverts("vault: segment insolvent"):
        system.vault.withdraw(alts, claims, sender=attacker)
    cash = _cash(system, alts)
    # the documented cap: what the segment holds (its traders' collateral), never more
    system.vault.withdraw(alts, cash, sender=attacker)
    assert _cash(system, alts) == 0
    # alts deposits: maker and trader 100,000 each, the honest buyer 100,000, the attacker 40,000
    assert cash <= usd(340_000) + usd(375)  # + the honest buyer's taker fee, still in the segment
    for owner in (maker, trader):
        owed = int(system.vault.collateral(owner, majors))
        wallet = int(system.token.balanceOf(owner))
        system.vault.withdraw(majors, owed, sender=owner)
        assert int(system.token.balanceOf(owner)) - wallet == owed
    books.check()


def test_keeper_sighting_gates_the_segment_before_the_profit_leaves(pumped, keeper, attacker, attacker2, alts, usd,
                                                                      books):
    """Regression 9.1 (dYdX's withdrawal gate): once a keeper flags the bankrupt short whose
    deficit (~580,000) exceeds what the pools can pay, nobody withdraws from alts for
    WITHDRAWAL_GATE seconds; the realized profit stays in reach of the waterfall."""
    system = pumped
    receipt = system.engine.flag(attacker2, alts, sender=keeper)
    (gate,) = events(receipt, system.vault.WithdrawalsGated)
    assert gate.segment == alts
    with ape.reverts("vault: withdrawals gated"):
        system.vault.withdraw(alts, usd(1), sender=attacker)
    chain.pending_timestamp = int(gate.until)
    system.vault.withdraw(alts, usd(1), sender=attacker)
    books.check()


def test_segment_cash_tracks_every_flow_to_the_wei(seeded, maker, trader, keeper, lp, majors, alts, usd, eth,
                                                   deployer, books):
    """segment_cash == sum(collateral) + accrued fees and penalties - sum(entry) per segment,
    through deposits, fills, a liquidation with cover, a sweep and withdrawals."""
    system = seeded
    trade(system, maker, trader, eth.id, wad(10), wad(3000))  # trader short 10
    system.vault.withdraw(majors, usd(96_000), sender=trader)
    set_price(system, "ETH-PERP", wad(3600), deployer)  # trader bankrupt: the pool covers
    receipt = system.engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    assert events(receipt, system.pools["majors"].Cover)
    system.vault.sweep_fees(majors, sender=keeper)
    system.vault.withdraw(majors, usd(1_000), sender=maker)
    books.check()
    for segment in (majors, alts):
        claims = 0
        for owner in books.holders():
            claims += int(system.vault.collateral(owner, segment))
            for market in system.markets.values():
                if market.segment == segment:
                    claims -= int(system.vault.position(owner, market.id)[1])
        for market in system.markets.values():
            if market.segment == segment:
                claims += int(system.lens.accrued_fees(market.id)) + int(system.lens.accrued_penalties(market.id))
        assert _cash(system, segment) == claims
    assert sum(_cash(system, s) for s in (majors, alts)) == int(system.token.balanceOf(system.vault))


# ---------------------------------------------------------------- 2. ADL bounded per counterparty


def test_adl_never_takes_more_than_a_counterpartys_profit_or_equity(funded, system, deployer, maker, trader, other,
                                                                     keeper, majors, usd, eth, books):
    """Regression 9.2: ETH 3,000 -> 200 with empty pools; a late 10x short (other: 2 ETH at
    210 on 60 of collateral, profit 20 at 200) is deleveraged first. It gives up at most its
    profit and ends at equity >= 0; the maker's profit pays the rest of the deficit."""
    trade(system, maker, trader, eth.id, -wad(10), wad(3000))  # trader long 10 at 3,000 ...
    system.vault.withdraw(majors, usd(96_000), sender=trader)  # ... on 3,985
    set_price(system, "ETH-PERP", wad(210), deployer)
    fund(system, other, majors, usd(60))
    fund(system, keeper, majors, usd(10_000))
    trade(system, keeper, other, eth.id, wad(2), wad(210))  # other short 2 at 210
    set_price(system, "ETH-PERP", wad(200), deployer)
    profit = -int(system.vault.position(other, eth.id)[1]) - 2 * 200 * usd(1)
    assert profit == usd(20)
    before = _equity(system, other, majors)
    receipt = system.engine.deleverage(trader, eth.id, other, wad(2), sender=keeper)
    (ev,) = events(receipt, system.engine.Deleveraged)
    assert ev.socialized_loss <= profit
    assert 0 <= _equity(system, other, majors) and before - _equity(system, other, majors) <= profit + 2
    # the rest of the deficit goes to the maker, whose profit covers it: first on the piece it
    # closes, then (the trader flat) from the profit of the maker's remaining 2 ETH short
    for _ in range(3):
        if int(system.vault.position(trader, eth.id)[0]) == 0 and int(system.vault.collateral(trader, majors)) >= 0:
            break
        system.engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    assert int(system.vault.position(trader, eth.id)[0]) == 0
    assert int(system.vault.collateral(trader, majors)) == 0
    for owner in (maker, other, keeper):
        assert _equity(system, owner, majors) >= 0
    books.check()


# ---------------------------------------------------------------- 3. no dead ends


@pytest.mark.parametrize("order", ["liquidate-first", "deleverage-first"])
def test_bankrupt_with_a_profitable_last_position_is_closed_and_socialized(order, funded, system, deployer, maker,
                                                                           trader, keeper, other, majors, usd, eth,
                                                                           btc, books):
    """Regression 9.3: the trader (small account) is short ETH (gapped far through its
    bankruptcy) and long BTC (profitable); pools empty. Whatever the keeper's order, bounded
    permissionless calls bring it flat with its deficit socialized exactly (collateral 0)."""
    fund(system, keeper, majors, usd(100_000))
    fund(system, other, majors, usd(10_000))
    trade(system, maker, trader, eth.id, wad(10), wad(3000))      # trader short 10 ETH
    trade(system, other, keeper, eth.id, wad(2), wad(3000))       # other long 2 ETH: a bystander winner
    trade(system, trader, maker, btc.id, wad(1), wad(60_000))     # trader long 1 BTC
    set_price(system, "BTC-PERP", wad(61_000), deployer)
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    # drain the trader: it withdraws down to IM first (ETH whale 2025 pattern)
    health = system.vault.account_health(trader, majors)
    free = min(int(health.collateral), int(health.equity)) - int(health.im)
    system.vault.withdraw(majors, free, sender=trader)
    set_price(system, "ETH-PERP", wad(9_000), deployer)
    set_price(system, "BTC-PERP", wad(61_000), deployer)
    assert _equity(system, trader, majors) < 0
    engine = system.engine
    if order == "liquidate-first":
        engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    else:
        engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    # the last position is the profitable BTC long: a liquidation still closes it
    for _ in range(8):
        if int(system.vault.position(trader, btc.id)[0]) == 0:
            break
        engine.liquidate(trader, btc.id, wad(1), sender=keeper)
    assert int(system.vault.position(trader, btc.id)[0]) == 0
    for _ in range(4):
        if int(system.vault.collateral(trader, majors)) >= 0:
            break
        engine.deleverage(trader, eth.id, _profitable_eth(system, maker, other), wad(1), sender=keeper)
    assert int(system.vault.collateral(trader, majors)) == 0
    for owner in (maker, keeper, other):
        assert _equity(system, owner, majors) >= 0
    books.check()


def _profitable_eth(system, *owners):
    """The owner with the largest ETH uPnL (the residual ADL's counterparty)."""
    eth = system.markets["ETH-PERP"].id
    mark = int(system.oracle.price(eth))
    scale = int(system.vault.notional_scale())

    def upnl(o):
        size, entry = (int(x) for x in system.vault.position(o, eth))
        return size * mark // scale - entry if size else -1

    return max(owners, key=upnl)


# ---------------------------------------------------------------- 4. one bad feed


@pytest.mark.parametrize("fault", ["stale", "zero", "out-of-bounds"])
def test_bad_feed_in_one_market_never_freezes_liquidation_of_another(fault, funded, system, deployer, maker, trader,
                                                                     keeper, majors, usd, eth, btc, books):
    """Regression 9.4: the trader holds a dust BTC position in a feed gone bad and a large
    ETH short that becomes liquidatable: flag, liquidate (ETH) and the health views keep
    working, valuing BTC against the trader; only BTC itself cannot be liquidated."""
    fund(system, keeper, majors, usd(100_000))
    trade(system, maker, trader, btc.id, -wad("0.002"), wad(60_000))  # trader long dust BTC
    trade(system, maker, trader, eth.id, wad(300), wad(3000))          # trader short 300 ETH
    feed = btc.feed
    if fault == "stale":
        feed.set_round(60_000 * 10 ** int(feed.decimals()), chain.pending_timestamp - 7_200, sender=deployer)
    elif fault == "zero":
        feed.set_answer(0, sender=deployer)
    else:
        feed.set_answer(10**30, sender=deployer)
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    assert system.vault.account_health(trader, majors).equity < system.vault.account_health(trader, majors).mm
    system.engine.flag(trader, majors, sender=keeper)
    receipt = system.engine.liquidate(trader, eth.id, wad(300), sender=keeper)
    assert events(receipt, system.engine.Liquidated)[0].size > 0
    with ape.reverts():
        system.engine.liquidate(trader, btc.id, wad(1), sender=keeper)
    books.check()


# ---------------------------------------------------------------- 5. pause


def test_pause_is_reduce_only_so_liquidation_goes_on(funded, system, deployer, maker, trader, keeper, majors, usd,
                                                     eth):
    """Regression 9.5: the vault's pause used to block deposits and fills but not liquidation,
    so keepers liquidated owners who could neither add margin nor close. Now the pause is a
    reduce-only mode (the exchanges' incident mode; Aave v3's frozen reserve likewise keeps
    repay and liquidation open): withdrawals and risk-adding fills stop, while deposits,
    reducing fills and liquidations go on. Both sides: the owner can rescue itself, and an
    owner who does not is liquidated as usual."""
    fund(system, keeper, majors, usd(100_000))
    trade(system, maker, trader, eth.id, wad(300), wad(3000))  # trader short 300
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    assert system.vault.account_health(trader, majors).equity < system.vault.account_health(trader, majors).mm
    system.vault.pause(sender=deployer)
    snap = chain.snapshot()
    # the owner's side: margin in, risk down, still no withdrawal
    fund(system, trader, majors, usd(60_000))
    trade(system, maker, trader, eth.id, -wad(100), wad(3_300))  # both reduce
    h = system.vault.account_health(trader, majors)
    assert h.equity >= h.mm
    with ape.reverts("engine: account healthy"):
        system.engine.liquidate(trader, eth.id, wad(300), sender=keeper)
    with ape.reverts("pausable: contract is paused"):
        system.vault.withdraw(majors, usd(1), sender=trader)
    chain.restore(snap)
    # the keeper's side: an owner who does nothing is liquidated while paused
    receipt = system.engine.liquidate(trader, eth.id, wad(300), sender=keeper)
    assert events(receipt, system.engine.Liquidated)[0].size > 0


# ---------------------------------------------------------------- 6. keepers are never paid to wait


def _reward(receipt, engine, scale) -> int:
    (ev,) = events(receipt, engine.Liquidated)
    return int(ev.size) * abs(int(ev.mark) - int(ev.price)) // scale + int(ev.keeper_fee)


@pytest.mark.parametrize("ratio_ppm", [150_000, 190_000, 100_000, 30_000])
def test_reward_at_auction_end_is_at_least_the_floor_and_bankruptcy_never_pays_more(ratio_ppm, funded, system,
                                                                                    deployer, maker, trader, keeper,
                                                                                    majors, usd, eth):
    """Regression 9.6: a trader in the full-close tier with equity = ratio x MM at the end of
    its auction pays the keeper at least the fee floor; the same account 0.6% of price later
    (bankrupt) pays the keeper the floor only (the pool would pay the rest): never more."""
    fund(system, keeper, majors, usd(100_000))
    engine, scale = system.engine, int(system.vault.notional_scale())
    trade(system, maker, trader, eth.id, -wad(10), wad(3000))  # trader long 10 (taker fee 15) ...
    system.vault.withdraw(majors, usd(100_000) - usd(4_000), sender=trader)  # ... on 3,985
    # equity(P) = 10 P - 26,015, MM = 0.5 P: solve equity = r x MM
    r = ratio_ppm / 1e6
    price = 26_015 / (10 - 0.5 * r)
    set_price(system, "ETH-PERP", wad(f"{price:.6f}"), deployer)
    h = system.vault.account_health(trader, majors)
    assert 0 < h.equity < h.mm
    engine.flag(trader, majors, sender=keeper)
    start = int(engine.flagged_at(trader, majors))
    snap = chain.snapshot()
    chain.pending_timestamp = start + int(engine.params().auction_duration)
    now_reward = _reward(engine.liquidate(trader, eth.id, wad(10), sender=keeper), engine, scale)
    floor = int(engine.params().keeper_fee_floor)
    assert now_reward >= min(floor, int(h.equity) - 2)
    chain.restore(snap)
    set_price(system, "ETH-PERP", wad(f"{price * 0.994 * 0.98:.6f}"), deployer)
    assert system.vault.account_health(trader, majors).equity < 0
    chain.pending_timestamp = start + int(engine.params().auction_duration)
    later_reward = _reward(engine.liquidate(trader, eth.id, wad(10), sender=keeper), engine, scale)
    assert later_reward == floor <= max(now_reward, floor)


# ---------------------------------------------------------------- 7. stale flags


def test_a_flag_from_a_past_episode_starts_no_auction(funded, system, deployer, maker, trader, keeper, majors, usd,
                                                      eth):
    """Regression 9.7: the trader is flagged, recovers (price back), and dips again three days
    later: the new dip starts at the start discount and ADL's "auction over" branch is shut
    (the owner cannot close at mark without penalty and pick its counterparty)."""
    fund(system, keeper, majors, usd(100_000))
    trade(system, maker, trader, eth.id, wad(300), wad(3000))
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    system.engine.flag(trader, majors, sender=keeper)
    set_price(system, "ETH-PERP", wad(3_000), deployer)
    chain.pending_timestamp = chain.pending_timestamp + 3 * 86_400
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    assert system.engine.flagged_at(trader, majors) == 0
    assert system.engine.auction_discount(trader, majors) == system.engine.params().auction_start_discount
    with ape.reverts("engine: no unpaid deficit"):
        system.engine.deleverage(trader, eth.id, maker, wad(1), sender=keeper)
    receipt = system.engine.liquidate(trader, eth.id, wad(300), sender=keeper)
    (ev,) = events(receipt, system.engine.Liquidated)
    assert ev.discount == system.engine.params().auction_start_discount
    assert events(receipt, system.engine.Flagged)


# ---------------------------------------------------------------- 8. fees never create bad debt


def test_keeper_fee_floor_never_turns_a_solvent_account_into_bad_debt(seeded, deployer, maker, trader, keeper,
                                                                      majors, usd, eth, books):
    """Regression 9.8: an account with equity below the 2-unit fee floor is closed; the keeper
    gets what the equity can pay, the account ends at collateral >= 0 and the pool pays
    nothing (repeatable with one's own accounts, so it must not pay)."""
    system = seeded
    trade(system, maker, trader, eth.id, -wad(1), wad(3000))
    system.vault.withdraw(majors, usd(100_000) - usd(400), sender=trader)  # long 1 ETH on 398.5
    set_price(system, "ETH-PERP", wad("2602.5"), deployer)  # equity 1, MM 130.125
    assert 0 < int(system.vault.account_health(trader, majors).equity) < int(system.engine.params().keeper_fee_floor)
    pool_assets = int(system.pools["majors"].totalAssets())
    receipt = system.engine.liquidate(trader, eth.id, wad(1), sender=keeper)
    assert not events(receipt, system.pools["majors"].Cover)
    assert int(system.vault.collateral(trader, majors)) >= 0
    assert int(system.pools["majors"].totalAssets()) == pool_assets
    books.check()


def test_one_wei_calls_at_the_auction_end_cannot_farm_the_fee_floor(funded, system, deployer, maker, trader, keeper,
                                                                     majors, usd, eth):
    """Found in review of the 9.6 fix: at the auction's end the floor top-up is paid only to a
    call closing at least a close factor's share, so repeated 1-wei liquidations earn no fee
    and cannot drain the account's equity without reducing its position."""
    fund(system, keeper, majors, usd(100_000))
    trade(system, maker, trader, eth.id, wad(300), wad(3000))
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    system.engine.flag(trader, majors, sender=keeper)
    chain.pending_timestamp = int(system.engine.flagged_at(trader, majors)) + 600
    set_price(system, "ETH-PERP", wad(3_300), deployer)
    for _ in range(3):
        receipt = system.engine.liquidate(trader, eth.id, 1, sender=keeper)
        assert events(receipt, system.engine.Liquidated)[0].keeper_fee == 0


def test_a_used_up_per_block_cover_limit_never_opens_adl(funded, system, deployer, maker, trader, keeper, lp,
                                                          majors, usd, eth):
    """Found in review (issue 9): ADL used to open when the pool's per-block cover limit was
    used up, although the pool still held funds: an attacker could spend the limit with a
    dust cover and force ADL on the winners. The engine now judges "uncovered" on
    cover_reach (ignoring the per-block limit): with a 1-unit limit, an empty backstop and a
    funded pool, ADL of a bankrupt account stays shut during its auction; what the
    liquidation's cover could not pay is retried in a later block (settle_bad_debt)."""
    pool = system.pools["majors"]
    system.token.mint(lp, usd(50_000), sender=lp)
    system.token.approve(pool, usd(50_000), sender=lp)
    pool.deposit(usd(50_000), lp, sender=lp)
    fund(system, keeper, majors, usd(100_000))
    trade(system, maker, trader, eth.id, wad(10), wad(3000))  # trader short 10
    system.vault.withdraw(majors, usd(96_000), sender=trader)
    set_price(system, "ETH-PERP", wad(3600), deployer)  # deficit 2,015
    pool.set_max_cover_per_block(usd(1), sender=deployer)
    assert int(pool.max_cover()) == usd(1) and int(pool.cover_reach()) >= usd(50_000)
    with ape.reverts("engine: no unpaid deficit"):
        system.engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    receipt = system.engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (settled,) = events(receipt, system.engine.BadDebtSettled)
    assert int(settled.unpaid) == -int(system.vault.collateral(trader, majors)) > 0
    assert not events(receipt, system.vault.WithdrawalsGated)  # the pools can pay: no gate
    pool.set_max_cover_per_block(2**96 - 1, sender=deployer)
    system.engine.settle_bad_debt(trader, majors, sender=keeper)
    assert int(system.vault.collateral(trader, majors)) == 0
