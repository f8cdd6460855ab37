"""The backstop's liquidator of last resort (BackstopLiquidator + LiquidationEngine.takeover).

A position nobody bought by the end of its Dutch auction goes to the liquidator at the auction's
end price, within its caps (one market's notional, all accounts' notional, losses per rolling
window, idle assets), before ADL may close it against winners; past a cap the takeover is refused
and ADL is open. The liquidator's account is liquidatable by anyone at any time (unwind: no
penalty, the discount keeps growing from the first unwind). `mark` charges a fall of its equity
below the book to the backstop's LPs at once; `reclaim` brings a flat account home, a gain only
then, as vesting income. A deployment without a liquidator (pools {"takeover": False}) deleverages
after the auction as before.

Numbers (tests/engine/conftest.py): the trader is 10 ETH short at 3,000 on 3,985 of collateral;
at 3,350 its equity is 485 against MM 1,675 (full-close tier, solvent). The backstop is seeded
with 400,000, so the default caps (10% / 20% / 7.5% per 8 h) take the 33,500 of notional.
Expected values are re-derived from the contracts' formulas on values read on chain
(kit.takeover_terms mirrors LiquidationEngine._takeover_terms).
"""

import ape
import pytest
from ape import chain

from backstop.client.actors import trade
from backstop.client.deploy import deploy_system
from backstop.core.config import ZERO_ADDRESS, SystemConfig
from backstop.core.units import WAD, wad

BACKSTOP = 400_000


@pytest.fixture
def everyone(accounts):
    return list(accounts[:10])


@pytest.fixture
def funded_backstop(kit, system, lp):
    kit.seed(system.backstop, kit.usd(BACKSTOP), lp)
    return system.backstop


def end_of_auction(kit, engine, owner, segment, keeper, after=0) -> int:
    """Flag `owner` now and move the clock to the auction's end (+ `after` s); returns that time."""
    engine.flag(owner, segment, sender=keeper)
    end = int(engine.flagged_at(owner, segment)) + int(engine.params().auction_duration) + after
    kit.at(end)
    return end


def quote_at(kit, engine, timestamp, owner, market, size):
    """engine.liquidation_quote(owner, market, size) as of `timestamp` (the chain is put back)."""
    snap = chain.snapshot()
    kit.mine_at(timestamp)
    quote = engine.liquidation_quote(owner, market.id, size)
    chain.restore(snap)
    kit.at(timestamp)
    return quote


def end_price(kit, engine, owner, market, segment) -> int:
    """The price of a whole-position close of a full-close-tier account at the auction's end:
    the max discount, capped at what its equity can pay (less 2 units of slack), rounded
    against the account (LiquidationEngine._plan / _liquidation_price)."""
    size, _ = (int(x) for x in kit.vault.position(owner, market.id))
    mark = int(kit.system.oracle.price(market.id))
    equity = int(kit.health(owner, segment).equity)
    notional = abs(size) * mark // kit.scale
    d = min(int(engine.params().auction_max_discount), max(equity - 2, 0) * WAD // max(notional, 1))
    if size > 0:
        return mark * (WAD - d) // WAD
    return -(-mark * (WAD + d) // WAD)


def taken_over(kit, engine, owner, market, segment, keeper):
    """engine.takeover of owner's whole position at the end of its auction: (receipt, terms)."""
    size = abs(int(kit.vault.position(owner, market.id)[0]))
    terms = kit.takeover_terms(owner, market, size)
    receipt = engine.takeover(owner, market.id, size, sender=keeper)
    return receipt, terms


@pytest.fixture
def eth_at_auction_end(short_eth, kit, engine, trader, keeper, majors, funded_backstop):
    """ETH at 3,350 and the trader's auction over (nobody bought): the liquidator may take it."""
    kit.eth(3350)
    end_of_auction(kit, engine, trader, majors, keeper)
    return kit


@pytest.fixture
def other_in_alts(kit, system, maker, other, alts):
    """`other` is 10 SOL short at 150 on 200 of alts collateral against the maker; SOL at 168
    puts it in the full-close tier, still solvent (equity 19.25 < MM 84 / 2)."""
    kit.fund(maker, alts, 100_000)
    kit.fund(other, alts, 200)
    trade(system, maker, other, system.markets["SOL-PERP"].id, wad(10), wad(150))
    kit.price("SOL-PERP", 168)
    health = kit.health(other, alts)
    assert 0 < int(health.equity) < int(health.mm) // 2
    return kit


@pytest.fixture
def other_in_btc(kit, system, maker, other, majors):
    """`other` is 0.2 BTC short at 60,000 on 1,500 of majors collateral; BTC at 66,000 puts it
    in the full-close tier, still solvent."""
    kit.fund(other, majors, 1500)
    trade(system, maker, other, system.markets["BTC-PERP"].id, wad("0.2"), wad(60_000))
    kit.price("BTC-PERP", 66_000)
    health = kit.health(other, majors)
    assert 0 < int(health.equity) < int(health.mm) // 2
    return kit


# ---------------------------------------------------------------- when and at which price


def test_takeover_only_after_the_auction(short_eth, kit, engine, trader, keeper, eth, majors, funded_backstop, everyone):
    kit.eth(3350)
    with ape.reverts("engine: auction not over"):  # never flagged: no auction yet
        engine.takeover(trader, eth.id, wad(10), sender=keeper)
    engine.flag(trader, majors, sender=keeper)
    start = int(engine.flagged_at(trader, majors))
    duration = int(engine.params().auction_duration)
    kit.at(start + duration - 1)
    with ape.reverts("engine: auction not over"):
        engine.takeover(trader, eth.id, wad(10), sender=keeper)
    kit.at(start + duration)
    receipt = engine.takeover(trader, eth.id, wad(10), sender=keeper)
    assert receipt.return_value == wad(10)
    kit.conservation(everyone)


def test_takeover_of_a_healthy_account_reverts(short_eth, kit, engine, trader, keeper, eth, majors, funded_backstop):
    kit.eth(3350)
    end = end_of_auction(kit, engine, trader, majors, keeper)
    kit.eth(3000)  # recovered before anybody acted
    kit.at(end)
    with ape.reverts("engine: account healthy"):
        engine.takeover(trader, eth.id, wad(10), sender=keeper)


@pytest.mark.parametrize("after", [0, 300])
def test_takeover_at_the_auction_end_price_within_caps(after, short_eth, kit, engine, system, liquidator, trader,
                                                       maker, keeper, lp, eth, majors, funded_backstop, everyone):
    """The liquidator takes the whole position at the price `liquidate` would give a keeper at
    that moment (the auction's end discount, capped by the account's equity), borrowing twice
    the IM it adds from the backstop, which keeps it in managed assets at book."""
    kit.eth(3350)
    end = end_of_auction(kit, engine, trader, majors, keeper, after=after)
    q_size, q_price, _, q_full, q_fee = quote_at(kit, engine, end, trader, eth, wad(10))
    assert (q_size, q_full) == (wad(10), True)
    assert q_price == end_price(kit, engine, trader, eth, majors)
    backstop = system.backstop
    total, price = int(backstop.totalAssets()), int(backstop.assets_per_share())
    market_notional, notional, margin = kit.takeover_terms(trader, eth, wad(10))
    assert int(liquidator.refusal(market_notional, notional, margin)) == 0
    receipt = engine.takeover(trader, eth.id, wad(10), sender=keeper)
    [taken] = kit.events(receipt, engine.TakenOver)
    assert (taken.owner, taken.market, taken.liquidator, taken.size, taken.price, taken.margin, taken.keeper) == (
        trader.address, eth.id, liquidator.address, wad(10), q_price, margin, keeper.address)
    [liq] = kit.events(receipt, engine.Liquidated)
    assert (liq.liquidator, liq.price, liq.size, liq.keeper_fee) == (liquidator.address, q_price, wad(10), q_fee)
    [funded] = kit.events(receipt, liquidator.TakeoverFunded)
    assert (funded.vault, funded.segment, funded.margin, funded.notional, funded.market_notional) == (
        system.vault.address, majors, margin, notional, market_notional)
    assert margin == 2 * (notional * int(kit.lens.market(eth.id).im_ratio) // WAD + 1)
    # the liquidator's account: the position, the borrowed margin (+ the keeper fee floor, if any)
    assert int(kit.vault.position(liquidator, eth.id)[0]) == -wad(10)
    assert int(kit.vault.collateral(liquidator, majors)) == margin + q_fee
    assert int(kit.vault.position(trader, eth.id)[0]) == 0
    health = kit.health(liquidator, majors)
    assert int(health.equity) >= int(health.im)
    # the backstop lent it: at book, its LPs' price does not move
    assert int(backstop.deployed()) == margin == int(liquidator.book(system.vault, majors))
    assert (int(backstop.totalAssets()), int(backstop.assets_per_share())) == (total, price)
    assert [(a.vault, a.segment) for a in liquidator.accounts()] == [(system.vault.address, majors)]
    assert int(liquidator.inventory()[0]) == notional
    assert int(engine.flagged_at(trader, majors)) == 0
    kit.conservation(everyone)


def test_the_stress_view_reports_the_inventory(eth_at_auction_end, kit, engine, system, liquidator, trader, keeper,
                                               eth, majors):
    _, (_, notional, _) = taken_over(kit, engine, trader, eth, majors, keeper)
    signal = kit.lens.stress(majors, ZERO_ADDRESS)
    managed = int(system.backstop.managed_assets())
    assert (signal.liquidator_notional, signal.liquidator_lost) == (notional, 0)
    assert signal.liquidator_cap == managed * int(liquidator.caps()[1]) // 10_000


# ---------------------------------------------------------------- ADL waits for the liquidator


def test_takeover_open_blocks_adl(eth_at_auction_end, kit, engine, trader, maker, keeper, eth, majors, everyone):
    with ape.reverts("engine: takeover open"):
        engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    engine.takeover(trader, eth.id, wad(10), sender=keeper)
    assert int(kit.vault.position(trader, eth.id)[0]) == 0
    kit.conservation(everyone)


def test_adl_of_an_uncovered_deficit_does_not_wait_for_the_liquidator(short_eth, kit, engine, system, trader, maker,
                                                                      keeper, eth, majors, funded_backstop, deployer,
                                                                      everyone):
    """A deficit the pools cannot pay (the majors pool empty and no longer a backstop member) is
    deleveraged at once, as before: a takeover would not pay it."""
    funded_backstop.set_member(system.pools["majors"], 0, sender=deployer)
    kit.eth(3600)
    assert int(kit.health(trader, majors).equity) < 0
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    [adl] = kit.events(receipt, engine.Deleveraged)
    assert adl.socialized_loss > 0 and int(kit.vault.position(trader, eth.id)[0]) == 0
    kit.conservation(everyone)


# ---------------------------------------------------------------- refusals, then ADL


def refused_then_adl(kit, engine, liquidator, owner, market, segment, counterparty, keeper, reason, everyone):
    """The takeover of owner's whole position is refused for `reason` (the liquidator's refusal
    code for the engine's terms), and ADL then closes it against `counterparty` at mark."""
    size = abs(int(kit.vault.position(owner, market.id)[0]))
    terms = kit.takeover_terms(owner, market, size)
    assert int(liquidator.refusal(*terms)) == reason
    deployed = int(kit.system.backstop.deployed())
    with ape.reverts("engine: takeover refused"):
        engine.takeover(owner, market.id, size, sender=keeper)
    receipt = engine.deleverage(owner, market.id, counterparty, size, sender=keeper)
    [adl] = kit.events(receipt, engine.Deleveraged)
    assert (adl.size, adl.price, adl.socialized_loss) == (size, adl.mark, 0)
    assert int(kit.vault.position(owner, market.id)[0]) == 0
    assert int(kit.system.backstop.deployed()) == deployed  # nothing was lent for it
    kit.conservation(everyone)


def test_refused_past_the_market_cap(short_eth, kit, engine, system, liquidator, trader, maker, keeper, lp, eth, majors,
                                     everyone):
    """A 300,000 backstop: 10% is 30,000 < the 33,500 of notional."""
    kit.seed(system.backstop, kit.usd(300_000), lp)
    kit.eth(3350)
    end_of_auction(kit, engine, trader, majors, keeper)
    market_notional, _, _ = kit.takeover_terms(trader, eth, wad(10))
    assert market_notional * 10_000 > int(liquidator.caps()[0]) * int(system.backstop.managed_assets())
    refused_then_adl(kit, engine, liquidator, trader, eth, majors, maker, keeper,
                     int(liquidator.REFUSED_MARKET_CAP()), everyone)


def test_refused_past_the_total_cap(eth_at_auction_end, other_in_btc, kit, engine, system, liquidator, trader, other,
                                    maker, keeper, deployer, eth, btc, majors, everyone):
    """Market and total cap both 10% (40,000): the ETH takeover (33,500) fits; the BTC position of
    another account (13,200) fits its market's cap but not the total."""
    liquidator.set_caps(1000, 1000, 750, 8 * 3600, sender=deployer)
    end_of_auction(kit, engine, other, majors, keeper)
    taken_over(kit, engine, trader, eth, majors, keeper)
    market_notional, notional, _ = kit.takeover_terms(other, btc, abs(int(kit.vault.position(other, btc.id)[0])))
    managed = int(system.backstop.managed_assets())
    assert market_notional * 10_000 <= 1000 * managed < (int(liquidator.inventory()[0]) + notional) * 10_000
    refused_then_adl(kit, engine, liquidator, other, btc, majors, maker, keeper, int(liquidator.REFUSED_TOTAL_CAP()),
                     everyone)


def test_refused_past_the_loss_limit(eth_at_auction_end, other_in_btc, kit, engine, system, liquidator, trader, other,
                                     maker, keeper, deployer, eth, btc, majors, everyone):
    """Loss limit 0.1% of the backstop per window: ETH rises to 3,500 after the takeover, `mark`
    charges the liquidator's loss (> 400) and the next takeover is refused until the window ends."""
    liquidator.set_caps(1000, 2000, 10, 8 * 3600, sender=deployer)
    end = end_of_auction(kit, engine, other, majors, keeper)
    taken_over(kit, engine, trader, eth, majors, keeper)
    kit.at(end)
    kit.eth(3500)
    loss = liquidator.mark(system.vault, majors, sender=keeper).return_value
    lost, managed = int(liquidator.inventory()[1]), int(liquidator.inventory()[2])
    assert lost == loss and lost * 10_000 >= 10 * (managed + lost)
    refused_then_adl(kit, engine, liquidator, other, btc, majors, maker, keeper, int(liquidator.REFUSED_LOSS_LIMIT()),
                     everyone)


def test_the_loss_window_rolls_over(eth_at_auction_end, other_in_btc, kit, engine, system, liquidator, trader, other,
                                    maker, keeper, deployer, eth, btc, majors, everyone):
    liquidator.set_caps(1000, 2000, 10, 3600, sender=deployer)
    taken_over(kit, engine, trader, eth, majors, keeper)
    kit.eth(3500)
    receipt = liquidator.mark(system.vault, majors, sender=keeper)
    size = abs(int(kit.vault.position(other, btc.id)[0]))
    assert int(liquidator.refusal(*kit.takeover_terms(other, btc, size))) == int(liquidator.REFUSED_LOSS_LIMIT())
    kit.mine_at(receipt.timestamp + 3600)
    assert int(liquidator.inventory()[1]) == 0
    assert int(liquidator.refusal(*kit.takeover_terms(other, btc, size))) == 0
    kit.conservation(everyone)


def test_refused_for_lack_of_idle_assets(eth_at_auction_end, other_in_alts, kit, engine, system, liquidator, trader,
                                         other, maker, keeper, deployer, eth, sol, majors, alts, everyone):
    """After the ETH takeover, ETH collapses to 150 (the short inventory shrinks, its margin stays
    lent) and a member draws every idle unit of the backstop: the caps (all 100%) would take the
    SOL position, but its margin cannot be lent."""
    backstop = system.backstop
    end = end_of_auction(kit, engine, other, alts, keeper)
    taken_over(kit, engine, trader, eth, majors, keeper)
    kit.at(end)
    kit.eth(150)
    backstop.set_member(deployer, 10_000, sender=deployer)
    backstop.set_global_draw_cap(10_000, sender=deployer)
    idle = int(backstop.managed_assets()) - int(backstop.deployed())
    assert int(backstop.draw_capacity(deployer)) == idle
    backstop.draw(idle, deployer, sender=deployer)
    liquidator.set_caps(10_000, 10_000, 750, 8 * 3600, sender=deployer)
    _, notional, margin = kit.takeover_terms(other, sol, wad(10))
    managed = int(backstop.managed_assets())
    assert int(backstop.deployed()) == managed and margin > 0
    assert (int(liquidator.inventory()[0]) + notional) <= managed
    refused_then_adl(kit, engine, liquidator, other, sol, alts, maker, keeper, int(liquidator.REFUSED_IDLE_ASSETS()),
                     everyone + [deployer])


def test_refused_without_a_funded_backstop(short_eth, kit, engine, liquidator, trader, maker, keeper, eth, majors,
                                           everyone):
    """An empty backstop takes nothing over (every cap is a share of 0): ADL as before."""
    kit.eth(3350)
    end_of_auction(kit, engine, trader, majors, keeper)
    assert int(liquidator.refusal(*kit.takeover_terms(trader, eth, wad(10)))) != 0
    with ape.reverts("engine: takeover refused"):
        engine.takeover(trader, eth.id, wad(10), sender=keeper)
    engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    kit.conservation(everyone)


def test_caps_setter_checks(liquidator, deployer, attacker):
    with ape.reverts("access_control: account is missing role"):
        liquidator.set_caps(1000, 2000, 750, 3600, sender=attacker)
    with ape.reverts("liquidator: bad notional caps"):
        liquidator.set_caps(2001, 2000, 750, 3600, sender=deployer)
    with ape.reverts("liquidator: bad notional caps"):
        liquidator.set_caps(1000, 10_001, 750, 3600, sender=deployer)
    with ape.reverts("liquidator: bad loss limit"):
        liquidator.set_caps(1000, 2000, 10_001, 3600, sender=deployer)
    with ape.reverts("liquidator: bad window"):
        liquidator.set_caps(1000, 2000, 750, 0, sender=deployer)
    liquidator.set_caps(500, 600, 700, 3600, sender=deployer)
    assert tuple(int(x) for x in liquidator.caps()) == (500, 600, 700, 3600)


def test_only_an_engine_funds_a_takeover(liquidator, attacker, majors, system):
    with ape.reverts("access_control: account is missing role"):
        liquidator.fund_takeover(majors, 1, 1, 1, sender=attacker)
    with ape.reverts("backstop: not liquidator"):
        system.backstop.fund_liquidator(1, sender=attacker)
    with ape.reverts("backstop: not liquidator"):
        system.backstop.settle_liquidator(0, 0, sender=attacker)


# ---------------------------------------------------------------- unwind


def test_anyone_unwinds_the_liquidator_without_penalty_and_the_discount_grows(
        eth_at_auction_end, kit, engine, system, liquidator, trader, maker, keeper, attacker, eth, majors, everyone):
    taken_over(kit, engine, trader, eth, majors, keeper)
    health = kit.health(liquidator, majors)
    assert int(health.equity) >= int(health.mm)  # healthy: nobody else could be liquidated here
    with ape.reverts("engine: account healthy"):
        engine.liquidate(maker, eth.id, wad(1), sender=keeper)
    kit.fund(attacker, majors, 20_000)
    penalties = int(kit.lens.accrued_penalties(eth.id))
    receipt = engine.liquidate(liquidator, eth.id, wad(10), sender=attacker)
    [first] = kit.events(receipt, engine.Liquidated)
    [flag] = kit.events(receipt, engine.Flagged)
    assert flag.owner == liquidator.address and flag.flagged_by == attacker.address
    start = int(engine.flagged_at(liquidator, majors))
    p = engine.params()
    assert first.discount == p.auction_start_discount and first.penalty == 0
    assert first.size == wad(10) * p.close_factor // WAD  # a healthy account: one close factor per call
    duration = int(p.auction_duration)
    for elapsed in (duration // 4, duration // 2, duration):
        kit.at(start + elapsed)
        kit.eth(3350)
        receipt = engine.liquidate(liquidator, eth.id, wad(10), sender=keeper)
        [ev] = kit.events(receipt, engine.Liquidated)
        grown = p.auction_start_discount + (p.auction_max_discount - p.auction_start_discount) * elapsed // duration
        assert (ev.discount, ev.penalty) == (grown, 0)
        assert ev.price == -(-ev.mark * (WAD + grown) // WAD)  # the liquidator is short: the taker sells dearer
        # the unwind keeps the clock running: the flag stays while the account is healthy
        assert int(engine.flagged_at(liquidator, majors)) == start
    assert int(kit.lens.accrued_penalties(eth.id)) == penalties
    kit.conservation(everyone)


# ---------------------------------------------------------------- mark and reclaim


def test_mark_charges_a_loss_at_once_and_never_books_a_gain(eth_at_auction_end, ledger, kit, engine, system,
                                                            liquidator, trader, keeper, eth, majors, everyone):
    backstop, vault = system.backstop, system.vault
    taken_over(kit, engine, trader, eth, majors, keeper)
    book = int(liquidator.book(vault, majors))
    watch = ledger(system.token, backstop=backstop, vault=vault, liquidator=liquidator)
    # the price falls: the short inventory gains, mark books nothing
    kit.eth(3200)
    assert int(kit.health(liquidator, majors).equity) > book
    price = int(backstop.assets_per_share())
    receipt = liquidator.mark(vault, majors, sender=keeper)
    [marked] = kit.events(receipt, liquidator.Marked)
    assert (marked.book, marked.loss) == (book, 0) and receipt.return_value == 0
    assert int(backstop.assets_per_share()) == price and int(liquidator.book(vault, majors)) == book
    watch.moved()
    # the price rises past the book: the loss is charged to the backstop's LPs now
    kit.eth(3600)
    equity = int(kit.health(liquidator, majors).equity)
    assert 0 < equity < book
    total, managed = int(backstop.totalAssets()), int(backstop.managed_assets())
    receipt = liquidator.mark(vault, majors, sender=keeper)
    [marked] = kit.events(receipt, liquidator.Marked)
    assert (marked.book, marked.equity, marked.loss) == (book, equity, book - equity)
    [settled] = kit.events(receipt, backstop.LiquidatorSettled)
    assert (settled.released, settled.returned, settled.gain, settled.loss) == (book - equity, 0, 0, book - equity)
    assert int(backstop.totalAssets()) == total - (book - equity)
    assert int(backstop.managed_assets()) == managed - (book - equity)
    assert int(backstop.assets_per_share()) < price
    assert int(backstop.deployed()) == equity == int(liquidator.book(vault, majors))
    assert int(liquidator.inventory()[1]) == book - equity
    watch.moved()  # a mark moves no token
    kit.conservation(everyone)
    # marking again at the same price charges nothing more
    assert liquidator.mark(vault, majors, sender=keeper).return_value == 0


def test_reclaim_brings_a_flat_account_home_and_books_the_gain_as_income(eth_at_auction_end, ledger, kit, engine,
                                                                         system, liquidator, trader, keeper, eth,
                                                                         majors, everyone):
    backstop, vault = system.backstop, system.vault
    taken_over(kit, engine, trader, eth, majors, keeper)
    with ape.reverts("liquidator: inventory left"):
        liquidator.reclaim(vault, majors, sender=keeper)
    kit.eth(3200)  # the inventory gains; keepers unwind it
    kit.unwind(keeper, liquidator, eth)
    book = int(liquidator.book(vault, majors))
    collateral = int(kit.vault.collateral(liquidator, majors))
    assert collateral > book  # a gain
    total, price = int(backstop.totalAssets()), int(backstop.assets_per_share())
    watch = ledger(system.token, backstop=backstop, vault=vault, liquidator=liquidator)
    receipt = liquidator.reclaim(vault, majors, sender=keeper)
    assert receipt.return_value == collateral
    [settled] = kit.events(receipt, backstop.LiquidatorSettled)
    assert (settled.released, settled.returned, settled.gain, settled.loss) == (book, collateral, collateral - book, 0)
    watch.moved(vault=-collateral, backstop=collateral)
    # the gain vests: nothing jumps at the reclaim, the LPs earn it over the vesting period
    assert (int(backstop.totalAssets()), int(backstop.assets_per_share())) == (total, price)
    assert int(backstop.unvested_income()) == collateral - book
    assert int(backstop.deployed()) == 0 and int(liquidator.book(vault, majors)) == 0
    assert list(liquidator.accounts()) == [] and int(kit.vault.collateral(liquidator, majors)) == 0
    kit.conservation(everyone)
    kit.mine_at(receipt.timestamp + int(backstop.income_vesting()))
    assert int(backstop.totalAssets()) == total + collateral - book
    with ape.reverts("liquidator: no such account"):
        liquidator.reclaim(vault, majors, sender=keeper)
    with ape.reverts("liquidator: nothing booked"):
        liquidator.mark(vault, majors, sender=keeper)


def test_reclaim_of_a_losing_account_charges_the_loss(eth_at_auction_end, ledger, kit, engine, system, liquidator,
                                                      trader, keeper, eth, majors, everyone):
    backstop, vault = system.backstop, system.vault
    taken_over(kit, engine, trader, eth, majors, keeper)
    kit.eth(3450)  # the inventory loses; unwound without a mark in between
    kit.unwind(keeper, liquidator, eth)
    book = int(liquidator.book(vault, majors))
    collateral = int(kit.vault.collateral(liquidator, majors))
    assert 0 < collateral < book
    total = int(backstop.totalAssets())
    watch = ledger(system.token, backstop=backstop, vault=vault, liquidator=liquidator)
    receipt = liquidator.reclaim(vault, majors, sender=keeper)
    [settled] = kit.events(receipt, backstop.LiquidatorSettled)
    assert (settled.gain, settled.loss) == (0, book - collateral)
    watch.moved(vault=-collateral, backstop=collateral)
    assert int(backstop.totalAssets()) == total - (book - collateral)
    assert int(liquidator.inventory()[1]) == book - collateral  # counted in the loss window
    kit.conservation(everyone)


# ---------------------------------------------------------------- regressions


def test_regression_backstop_lent_beyond_its_assets_never_blocks_the_waterfall(
        eth_at_auction_end, other_in_btc, kit, engine, system, liquidator, trader, other, lp, attacker, keeper, eth,
        btc, majors, everyone):
    """Found writing these tests (BackstopPool / BackstopLiquidator of 2f0ac33): idle assets were
    `managed - deployed`, unchecked. Tokens sent to the backstop directly let an LP redeem more
    than the idle assets (its fair share of managed assets, the lent part included), leaving
    managed < deployed: every draw, draw_capacity, cover_reach and takeover refusal then
    reverted on the underflow, so the bankrupt account of any member could be neither
    liquidated (its cover draws) nor deleveraged (cover_reach): a dead end for every deployment
    on the backstop. Fixed: idle assets are managed - min(deployed, managed) (0 here)."""
    backstop, token = system.backstop, system.token
    taken_over(kit, engine, trader, eth, majors, keeper)
    lent = int(backstop.deployed())
    token.mint(attacker, lent, sender=attacker)
    token.transfer(backstop, lent, sender=attacker)  # a donation: not in the backstop's accounts
    shares = int(backstop.balanceOf(lp))
    unlock, _ = backstop.request_redeem(shares, sender=lp).return_value
    kit.at(unlock)
    backstop.redeem(shares, lp, lp, sender=lp)  # paid partly with the donated tokens
    assert int(backstop.managed_assets()) < int(backstop.deployed()) == lent
    # every view of the waterfall still answers: nothing idle to draw or lend
    pool = system.pools["majors"]
    assert int(backstop.draw_capacity(pool)) == 0
    assert int(pool.cover_reach()) == int(pool.managed_assets())
    kit.eth(3350)
    kit.price("BTC-PERP", 80_000)  # `other` is bankrupt, its majors pool is empty
    assert int(kit.health(other, majors).equity) < 0
    assert int(liquidator.refusal(*kit.takeover_terms(other, btc, wad("0.2")))) != 0
    receipt = engine.liquidate(other, btc.id, wad("0.2"), sender=keeper)
    [cover] = kit.events(receipt, pool.Cover)
    assert cover.paid_by_backstop == 0 and cover.unpaid == cover.requested
    assert int(kit.vault.position(other, btc.id)[0]) == 0
    kit.conservation(everyone, donated={backstop: lent})


# ---------------------------------------------------------------- no liquidator


@pytest.fixture(scope="module")
def adl_only(deployer, treasury):
    """A deployment without a liquidator of last resort (the stress comparison's baseline)."""
    return deploy_system(deployer, SystemConfig(treasury=treasury.address, pools={"takeover": False}))


def test_without_a_liquidator_adl_follows_the_auction_as_before(adl_only, deployer, maker, trader, keeper, lp):
    system = adl_only
    assert system.liquidator is None and system.engine.liquidator() == ZERO_ADDRESS
    assert system.backstop.liquidator() == ZERO_ADDRESS
    engine, vault, token = system.engine, system.vault, system.token
    majors, eth = system.segments["majors"], system.markets["ETH-PERP"].id
    usd = lambda x: x * 10**system.decimals  # noqa: E731
    token.mint(lp, usd(BACKSTOP), sender=lp)
    token.approve(system.backstop, usd(BACKSTOP), sender=lp)
    system.backstop.deposit(usd(BACKSTOP), lp, sender=lp)  # funded: no cap is what stops a takeover
    for who, amount in ((maker, 100_000), (keeper, 100_000), (trader, 4000)):
        token.mint(who, usd(amount), sender=who)
        token.approve(vault, usd(amount), sender=who)
        vault.deposit(majors, usd(amount), sender=who)
    trade(system, maker, trader, eth, wad(10), wad(3000))
    system.markets["ETH-PERP"].feed.set_answer(3350 * 10**system.markets["ETH-PERP"].spec.feed_decimals, sender=deployer)
    engine.flag(trader, majors, sender=keeper)
    chain.pending_timestamp = int(engine.flagged_at(trader, majors)) + int(engine.params().auction_duration)
    with ape.reverts("engine: no liquidator"):
        engine.takeover(trader, eth, wad(10), sender=keeper)
    receipt = engine.deleverage(trader, eth, maker, wad(10), sender=keeper)
    [adl] = receipt.decode_logs(engine.Deleveraged)
    assert (adl.price, adl.socialized_loss) == (adl.mark, 0)
    assert int(vault.position(trader, eth)[0]) == 0
    # conservation to the wei: the vault holds exactly what it owes, every pool what it accounts for
    assert int(token.balanceOf(vault)) == sum(int(vault.collateral(o, majors)) for o in (maker, keeper, trader)) + \
        int(system.lens.accrued_fees(eth)) + int(system.lens.accrued_penalties(eth)) - \
        sum(int(vault.position(o, eth)[1]) for o in (maker, keeper, trader))
    for pool in (*system.pools.values(), system.backstop):
        assert int(token.balanceOf(pool)) == int(pool.managed_assets())

