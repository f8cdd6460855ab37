"""Oracle incidents: Mango 2022 (pumped feed, unrealized PnL as a source of funds) and
stale-oracle arbitrage. The test controls the mock feed, modelling a manipulated thin feed."""

import ape
import pytest
from ape import chain

from backstop.client.actors import fund, signed_order, fill, trade
from backstop.sim.agents import MangoPump, Agent
from backstop.core.units import WAD, wad

from adv_helpers import events, now, pool_state



def test_mango_pump_cannot_withdraw_unrealized_pnl(env, system, attacker, maker, eth, majors, usd, books):
    """Attacker long 20 ETH at 3,000 with 10,000; the feed is pumped to 4,500 (+50%, equity
    40,000). Only realized collateral may leave; a bid at the pumped price can no longer be
    hit once the feed is corrected (price band); the attacker ends with P&L = -fees <= 0."""
    pools_before = {k: pool_state(system, p) for k, p in system.pools.items()}
    agent = MangoPump(env, attacker, market="ETH-PERP", size=wad(20), entry=wad(3000), pump=wad(4500),
                      collateral=usd(10_000))
    pnl = agent.run()

    assert agent.equity_at_pump == usd(40_000)  # the attacker is the order maker: no fee
    reasons = agent.reasons()
    assert reasons["withdraw unrealized"] == "vault: insufficient collateral"
    assert reasons["withdraw equity"] == "vault: insufficient collateral"
    assert reasons["sell at pumped price"] == "vault: price outside band"
    assert agent.outcome("close at oracle").ok and agent.outcome("withdraw realized").ok
    # P&L: exactly minus the taker fee of the close (5 bps of 60,000)
    assert pnl <= 0
    assert pnl == -usd(30)
    # no pool paid anything
    for k, p in system.pools.items():
        assert pool_state(system, p)[0] == pools_before[k][0]
    books.check()


def test_mango_pump_withdraw_bound_is_realized_collateral(env, system, attacker, maker, eth, majors, usd):
    """At the pumped price, the most that can leave is the realized collateral above IM, to
    the wei: unrealized profit backs neither a withdrawal nor the margin left behind."""
    fund(system, attacker, majors, usd(10_000))
    trade(system, attacker, maker, eth.id, wad(20), wad(3000))
    env.price("ETH-PERP", wad(4500))
    health = system.vault.account_health(attacker, majors)
    collateral, im = int(health.collateral), int(health.im)
    assert int(health.equity) > collateral > im  # a paper profit of 30,000
    with ape.reverts("vault: insufficient collateral"):
        system.vault.withdraw(majors, collateral + 1, sender=attacker)
    with ape.reverts("vault: below initial margin"):
        system.vault.withdraw(majors, collateral - im + 1, sender=attacker)
    system.vault.withdraw(majors, collateral - im, sender=attacker)
    assert int(system.vault.collateral(attacker, majors)) == im


def test_mango_price_band_blocks_off_oracle_fills(env, system, attacker, attacker2, eth, majors, usd):
    """Fills further than the band (10%) from the oracle revert, both ways; at the edge they pass."""
    fund(system, attacker, majors, usd(20_000))
    fund(system, attacker2, majors, usd(20_000))
    mark = int(system.oracle.price(eth.id))
    for price in (mark * 11 // 10 + 10**12, mark * 9 // 10 - 10**12, mark * 2, mark // 2):
        order = signed_order(system, attacker, eth.id, wad(1), price)
        with ape.reverts("vault: price outside band"):
            fill(system, order, attacker2)
    trade(system, attacker, attacker2, eth.id, wad(1), mark * 11 // 10)  # exactly at the edge


def test_regression_mango_leverage_on_pumped_unrealized_pnl(env, system, attacker, attacker2, maker, keeper,
                                                            eth, majors, usd, books):
    """Regression (found by this suite): unrealized PnL at a manipulated mark used to count
    towards IM for *new* positions, so a pumped account could open a huge position against
    its own second account at the pumped price; once the feed was corrected, the first
    account was bankrupt (pool and backstop paid, +74,835 to the attacker) and the second
    kept the profit: Mango's "borrowing against unrealized PnL". Now risk-increasing fills
    need min(collateral, equity) >= IM (Perp v2's free collateral), so the lever is refused
    and the attacker ends with P&L <= 0 and no pool loss."""
    pools_before = {k: pool_state(system, p)[0] for k, p in system.pools.items()}
    backstop_before = int(system.backstop.totalAssets())
    agent = Agent(env, [attacker, attacker2])
    agent.begin()
    agent.deposit(attacker, majors, usd(10_000))
    agent.deposit(attacker2, majors, usd(70_000))
    agent.trade("open long", attacker, attacker2, eth.id, wad(20), wad(3000))
    env.price("ETH-PERP", wad(4500))  # the manipulation: +30,000 unrealized for the attacker
    lever = agent.trade("lever on unrealized", attacker, attacker2, eth.id, wad(60), wad(4500))
    assert not lever.ok and lever.reason == "vault: below initial margin"
    env.price("ETH-PERP", wad(3000))  # the feed is corrected
    # both accounts unwind against each other at the oracle and leave
    agent.trade("unwind", attacker, attacker2, eth.id, -wad(20), wad(3000))
    for account in (attacker, attacker2):
        system.vault.withdraw(majors, int(system.vault.collateral(account, majors)), sender=account)
    pnl = agent.end()
    books.check()
    assert pnl <= 0
    assert {k: pool_state(system, p)[0] for k, p in system.pools.items()} == pools_before
    assert int(system.backstop.totalAssets()) == backstop_before


# ---------------------------------------------------------------- stale oracle


def _go_stale(seconds=3601):
    chain.mine(1, timestamp=now() + seconds)


def test_stale_oracle_arbitrage_reverts_everywhere(env, system, attacker, attacker2, maker, keeper, trader,
                                                   eth, majors, usd, books):
    """The feed stops updating for > 1 h (heartbeat) while the real price moves: trading,
    withdrawing against positions, flagging, liquidating and deleveraging all revert with
    "oracle: stale price"; the attacker's P&L is 0."""
    agent = Agent(env, [attacker, attacker2])
    fund(system, attacker, majors, usd(5_000))
    fund(system, attacker2, majors, usd(5_000))
    trade(system, attacker, maker, eth.id, wad(10), wad(3000))
    agent.begin()
    _go_stale()
    vault, engine = system.vault, system.engine
    order = signed_order(system, attacker2, eth.id, wad(1), wad(3000))
    agent.attempt("fill at stale price", fill, system, order, attacker)
    agent.attempt("withdraw against position", vault.withdraw, majors, usd(1), sender=attacker)
    agent.attempt("liquidate", engine.liquidate, attacker, eth.id, wad(1), sender=attacker2)
    agent.attempt("deleverage", engine.deleverage, attacker, eth.id, maker, wad(1), sender=attacker2)
    for label, reason in agent.reasons().items():
        assert reason == "oracle: stale price", (label, reason)
    # health views value the stale market 25% against the holder instead of reverting (issue
    # 9.4): the attacker's long counts at 2,250, so it can be flagged, never liquidated at
    # the stale price
    low, _ = system.oracle.price_range(eth.id)
    assert low == wad(3000) * 3 // 4
    engine.flag(attacker, majors, sender=attacker2)
    with ape.reverts("oracle: stale price"):
        engine.liquidate(attacker, eth.id, wad(1), sender=attacker2)
    with ape.reverts("oracle: stale price"):
        system.oracle.price(eth.id)
    # a flat account does not need the oracle to leave: collateral only (not an arbitrage)
    vault.withdraw(majors, usd(5_000), sender=attacker2)
    env.refresh()  # same answer, fresh round: the P&L can be marked again
    assert agent.end() == 0
    books.check()


def test_stale_oracle_liquidation_waits_for_fresh_price(env, system, attacker, maker, keeper, eth, majors, usd):
    """A keeper cannot liquidate at a stale price; the first fresh round lets it through."""
    fund(system, attacker, majors, usd(4_000))
    trade(system, attacker, maker, eth.id, wad(10), wad(3000))
    env.price("ETH-PERP", wad(2700))
    assert system.lens.is_liquidatable(attacker, majors)
    _go_stale()
    with ape.reverts("oracle: stale price"):
        system.engine.liquidate(attacker, eth.id, wad(10), sender=keeper)
    assert system.lens.is_liquidatable(attacker, majors)  # valued against it, not frozen
    env.price("ETH-PERP", wad(2700))
    receipt = system.engine.liquidate(attacker, eth.id, wad(10), sender=keeper)
    assert events(receipt, system.engine.Liquidated)
