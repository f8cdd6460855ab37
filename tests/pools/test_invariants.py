"""Invariant 6: pool assets per share only fall in a transaction that emits Cover.
Checked after every step of random sequences of deposits, income, time, requests, redeems,
transfers, donations and covers, on both the segment pool and the backstop (whose losses
come only through Draw inside a Cover)."""

from ape import chain
from hypothesis import given, strategies as st

from pool_helpers import COOLDOWN, DAY, deposit, income, next_tx_at, now

OPS = st.sampled_from(["deposit", "income", "wait", "request", "redeem", "transfer", "donate", "cover"])
STEPS = st.lists(st.tuples(OPS, st.integers(min_value=1, max_value=10**10), st.booleans()), min_size=4, max_size=14)


def _price(pool):
    # a finer price than assets_per_share: value of the whole supply (+ virtual shares)
    return (pool.totalAssets() + 1, pool.totalSupply() + 10**6)


def _fell(before, after):
    return after[0] * before[1] < before[0] * after[1]


@given(steps=STEPS)
def test_price_falls_only_with_cover(pool, backstop, token, settler, lp, lp2, attacker, steps):
    snapshot = chain.snapshot()
    try:
        deposit(token, pool, lp, 10**9)
        deposit(token, backstop, lp2, 10**9)
        actors = [lp, lp2]
        for op, amount, flag in steps:
            who = actors[flag]
            before = (_price(pool), _price(backstop), pool.assets_per_share(), backstop.assets_per_share())
            receipt = None
            if op == "deposit":
                receipt = deposit(token, pool if flag else backstop, who, amount)
            elif op == "income":
                receipt = income(token, pool, settler, amount)
            elif op == "wait":
                next_tx_at(now() + 1 + amount % (COOLDOWN + DAY))
                chain.mine(1)
            elif op == "request" and pool.balanceOf(who) > 0:
                receipt = pool.request_redeem(1 + amount % pool.balanceOf(who), sender=who)
            elif op == "redeem":
                # read maxRedeem at the block the redeem lands in (a view at the latest block
                # and a transaction at a later timestamp can disagree at a window's edge)
                chain.mine(1, timestamp=now() + COOLDOWN)
                next_tx_at(now())
                shares = pool.maxRedeem(who)
                if shares and pool.previewRedeem(shares):
                    receipt = pool.redeem(shares, who, who, sender=who)
            elif op == "transfer" and pool.balanceOf(who) > 0:
                receipt = pool.transfer(actors[1 - flag], 1 + amount % pool.balanceOf(who), sender=who)
            elif op == "donate":
                token.mint(attacker, amount, sender=attacker)
                receipt = token.transfer(pool, amount, sender=attacker)
            elif op == "cover":
                receipt = pool.cover(amount, sender=settler)
            after = (_price(pool), _price(backstop), pool.assets_per_share(), backstop.assets_per_share())
            covered = receipt is not None and len(list(receipt.decode_logs(pool.Cover))) == 1
            if not covered:
                assert not _fell(before[0], after[0]), op
                assert not _fell(before[1], after[1]), op
                assert after[2] >= before[2] and after[3] >= before[3], op
            # conservation of the pools' own books: tokens held >= assets managed
            assert token.balanceOf(pool) >= pool.managed_assets()
            assert token.balanceOf(backstop) >= backstop.managed_assets()
    finally:
        chain.restore(snapshot)
