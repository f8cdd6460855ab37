"""Same owner on both sides of trades: two attacker accounts fill each other at off-market
prices to park the loss in one account (bad debt for the pool) and the profit in the other."""

from backstop.sim.agents import WashTrader

from adv_helpers import pool_state


def test_wash_trading_cannot_extract_the_pool(env, system, attacker, attacker2, eth, majors, usd, books):
    """The rich account sells to the poor one 30% above the oracle (price band), at the band
    edge (the poor account would fall below IM), then, once the poor account is below IM,
    'reduces' at an off-market price (ratio rule), flips (IM) or signs a reduce-only order that
    flips (reduce-only). Only fills at the oracle pass: the attacker pays fees, the pool is
    untouched."""
    pools0 = {k: pool_state(system, p) for k, p in system.pools.items()}
    backstop0 = pool_state(system, system.backstop)
    agent = WashTrader(env, attacker, attacker2, market="ETH-PERP", collateral_rich=usd(20_000),
                       collateral_poor=usd(4_000))
    pnl = agent.run()
    reasons = agent.reasons()
    assert reasons["buy 30% above oracle"] == "vault: price outside band"
    assert reasons["buy at band edge"] == "vault: below initial margin"
    assert reasons["open at oracle"] is None
    assert reasons["reduce at off price"] == "vault: below initial margin"
    assert reasons["flip at off price"] == "vault: below initial margin"
    assert reasons["reduce-only order that flips"] == "vault: not reduce-only"
    assert reasons["reduce at oracle"] is None and reasons["close at oracle"] is None
    assert all(a.ok for a in agent.attempts if a.label == "withdraw")
    # P&L: the price move is a transfer between the two own accounts; fees are the cost
    fees = sum(int(system.lens.accrued_fees(m.id)) for m in system.markets.values())
    assert pnl == -fees and pnl < 0
    assert {k: pool_state(system, p) for k, p in system.pools.items()} == pools0
    assert pool_state(system, system.backstop) == backstop0
    assert int(system.vault.collateral(attacker2, majors)) == 0
    books.check()
