"""ERC-4626 share accounting: par price, inflation/donation attacks, rounding in the pool's favour."""

import ape
from ape import chain
from hypothesis import given, strategies as st

from backstop.core.units import VIRTUAL_SHARES
from pool_helpers import COOLDOWN, DECIMALS, deposit, income, next_tx_at, now

ONE_SHARE = 10 ** (DECIMALS + 6)


def test_metadata(pool, alts_pool, backstop, token, settler):
    assert pool.asset() == token.address == backstop.asset()
    assert pool.decimals() == DECIMALS + 6
    assert pool.segment() == 0 and alts_pool.segment() == 1
    assert pool.backstop() == backstop.address
    assert pool.hasRole(pool.INCOME_ROLE(), settler) and pool.hasRole(pool.COVER_ROLE(), settler)
    assert backstop.member_cap_bps(pool) == 2500 and backstop.member_cap_bps(alts_pool) == 2500
    assert backstop.member_count() == 2
    assert backstop.hasRole(backstop.INCOME_ROLE(), pool) and backstop.hasRole(backstop.INCOME_ROLE(), alts_pool)
    assert (pool.cooldown(), pool.redeem_window(), pool.income_vesting()) == (7 * 86400, 2 * 86400, 86400)
    assert pool.backstop_income_share_bps() == 1000 and pool.max_cover_per_block() == 2**256 - 1
    assert (backstop.global_draw_cap_bps(), backstop.draw_window()) == (5000, 86400)


def test_first_deposit_mints_at_par(pool, token, lp, usd):
    receipt = deposit(token, pool, lp, usd(1000))
    assert pool.balanceOf(lp) == usd(1000) * VIRTUAL_SHARES
    assert pool.totalAssets() == usd(1000) == pool.managed_assets()
    assert pool.assets_per_share() == 10**DECIMALS
    [log] = receipt.decode_logs(pool.Deposit)
    assert (log.sender, log.owner, log.assets, log.shares) == (lp.address, lp.address, usd(1000), usd(1000) * VIRTUAL_SHARES)
    assert receipt.return_value == usd(1000) * VIRTUAL_SHARES


def test_inflation_attack_fails(pool, token, lp, attacker, usd):
    # attacker: 1 wei deposit, then a large direct transfer ("donation")
    deposit(token, pool, attacker, 1)
    attacker_shares = pool.balanceOf(attacker)
    assert attacker_shares == VIRTUAL_SHARES
    price_before = pool.assets_per_share()
    token.mint(attacker, usd(10_000), sender=attacker)
    token.transfer(pool, usd(10_000), sender=attacker)
    assert pool.totalAssets() == 1
    assert pool.assets_per_share() == price_before
    # victim lp deposits 1,000 and gets fair shares
    deposit(token, pool, lp, usd(1000))
    lp_shares = pool.balanceOf(lp)
    assert lp_shares == usd(1000) * (attacker_shares + VIRTUAL_SHARES) // (1 + 1)
    assert pool.convertToAssets(lp_shares) >= usd(1000) - 1
    # the attacker's shares are still worth about their 1 wei: the donation is lost to them
    assert pool.convertToAssets(attacker_shares) <= 1
    assert token.balanceOf(pool) == usd(1000) + 1 + usd(10_000)
    assert pool.totalAssets() == usd(1000) + 1


def test_donation_before_first_deposit_is_ignored(pool, token, lp, attacker, usd):
    token.mint(attacker, usd(5_000), sender=attacker)
    token.transfer(pool, usd(5_000), sender=attacker)
    assert pool.totalAssets() == 0
    deposit(token, pool, lp, usd(100))
    assert pool.balanceOf(lp) == usd(100) * VIRTUAL_SHARES
    assert pool.convertToAssets(pool.balanceOf(lp)) == usd(100)


def test_donation_does_not_move_price(pool, token, lp, attacker, usd):
    deposit(token, pool, lp, usd(1000))
    total, price = pool.totalAssets(), pool.assets_per_share()
    token.mint(attacker, usd(777), sender=attacker)
    token.transfer(pool, usd(777), sender=attacker)
    assert (pool.totalAssets(), pool.assets_per_share()) == (total, price)


def test_preview_functions_round_in_pools_favour(pool, token, lp, lp2, settler, usd):
    deposit(token, pool, lp, usd(1000))
    income(token, pool, settler, usd(333))
    chain.mine(1, timestamp=now() + 86400)  # income fully vested: price not a round number
    total, supply = pool.totalAssets(), pool.totalSupply()
    assert pool.assets_per_share() > 10**DECIMALS
    shares_in = 10**12 + 7
    # mint rounds assets up, redeem rounds assets down
    up = pool.previewMint(shares_in)
    down = pool.previewRedeem(shares_in)
    exact_num, den = shares_in * (total + 1), supply + VIRTUAL_SHARES
    assert down == exact_num // den and up == -(-exact_num // den) and up == down + 1
    # withdraw rounds shares up, deposit rounds shares down
    assets_in = usd(10) + 3
    w = pool.previewWithdraw(assets_in)
    d = pool.previewDeposit(assets_in)
    exact_num, den = assets_in * (supply + VIRTUAL_SHARES), total + 1
    assert d == exact_num // den and w == -(-exact_num // den)
    # mint pulls exactly previewMint
    token.mint(lp2, up, sender=lp2)
    token.approve(pool, up, sender=lp2)
    receipt = pool.mint(shares_in, lp2, sender=lp2)
    assert receipt.return_value == up and pool.balanceOf(lp2) == shares_in and token.balanceOf(lp2) == 0


def test_deposit_then_redeem_all_returns_at_most_deposit(pool, token, lp, lp2, settler, usd):
    deposit(token, pool, lp2, usd(1234))
    income(token, pool, settler, usd(17))
    amount = usd(999) + 1
    deposit(token, pool, lp, amount)
    shares = pool.balanceOf(lp)
    pool.request_redeem(shares, sender=lp)
    next_tx_at(now() + COOLDOWN)
    receipt = pool.redeem(shares, lp, lp, sender=lp)
    got = token.balanceOf(lp)
    [log] = receipt.decode_logs(pool.Withdraw)
    assert log.assets == got and log.shares == shares and log.owner == lp.address
    # the 17 was notified before lp joined: lp bought it at full value (entry price includes
    # unvested income), so it earns none of it while it vests, and loses rounding only
    assert amount - 2 <= got <= amount


@given(
    seed_deposit=st.integers(min_value=0, max_value=10**13),
    income_amount=st.integers(min_value=0, max_value=10**12),
    loss=st.integers(min_value=0, max_value=10**12),
    amount=st.integers(min_value=1, max_value=10**13),
    use_withdraw=st.booleans(),
    vest_first=st.booleans(),
)
def test_no_free_shares_property(pool, token, lp, lp2, settler, seed_deposit, income_amount, loss, amount, use_withdraw,
                                 vest_first):
    """Invariant 7: deposit x then redeem everything after the cooldown returns <= x when no
    income is notified in between (the price may be anything: prior income, prior losses).
    With vest_first=False the prior income is still vesting when lp deposits and vests while
    it holds: lp bought it at full value, so it still gets back at most x."""
    snapshot = chain.snapshot()
    try:
        if seed_deposit:
            deposit(token, pool, lp2, seed_deposit)
        if income_amount:
            income(token, pool, settler, income_amount)
            if vest_first:
                chain.mine(1, timestamp=now() + 86400)  # fully vested before lp arrives
        if loss and seed_deposit:
            pool.cover(min(loss, pool.managed_assets()), sender=settler)
        if pool.previewDeposit(amount) == 0:
            with ape.reverts("pool: zero shares"):
                deposit(token, pool, lp, amount)
            return
        start = token.balanceOf(lp)
        deposit(token, pool, lp, amount)
        shares = pool.balanceOf(lp)
        pool.request_redeem(shares, sender=lp)
        next_tx_at(now() + COOLDOWN)
        if use_withdraw:
            assets = pool.maxWithdraw(lp)
            if assets > 0:
                pool.withdraw(assets, lp, lp, sender=lp)
        elif pool.previewRedeem(shares) > 0:
            pool.redeem(shares, lp, lp, sender=lp)
        assert token.balanceOf(lp) - start <= amount
    finally:
        chain.restore(snapshot)


def test_entry_price_includes_unvested_income(pool, token, lp, lp2, settler, deployer, usd):
    """Deposits and mints buy at managed assets (unvested income included); redeems and the
    convertTo*/assets_per_share views use totalAssets (unvested income excluded)."""
    pool.set_backstop_income_share(0, sender=deployer)
    deposit(token, pool, lp, usd(1000))
    income(token, pool, settler, usd(100))  # unvested: managed 1,100, totalAssets 1,000
    supply, managed = pool.totalSupply(), pool.managed_assets()
    assert pool.previewDeposit(usd(110)) == usd(110) * (supply + VIRTUAL_SHARES) // (managed + 1)
    assert pool.convertToShares(usd(110)) == usd(110) * (supply + VIRTUAL_SHARES) // (pool.totalAssets() + 1)
    receipt = deposit(token, pool, lp2, usd(110))
    shares = receipt.return_value
    # 110 buys about what 100 did before the income (par): 1,100 of managed assets back 1,000 of shares
    assert shares == usd(110) * (supply + VIRTUAL_SHARES) // (managed + 1)
    assert usd(100) * VIRTUAL_SHARES <= shares < usd(100) * VIRTUAL_SHARES * 10_001 // 10_000
    # lp2's exit value now is below what it paid: it holds none of lp's unvested 100...
    assert pool.convertToAssets(shares) < usd(110)
    # ...and after the income vests it is worth what it paid, not more
    chain.mine(1, timestamp=now() + 86400)
    assert usd(110) - 1 <= pool.convertToAssets(shares) <= usd(110)
    assert usd(1100) - 1 <= pool.convertToAssets(pool.balanceOf(lp)) <= usd(1100)


def test_first_deposit_prices_on_vested_assets(pool, token, lp, settler, deployer, usd):
    """Income that reaches a pool with no shares belongs to nobody: the first deposit is priced on
    totalAssets (par) and that income vests to the first holder, instead of staying forever with
    the virtual shares and taking the share price far off par."""
    pool.set_backstop_income_share(0, sender=deployer)
    income(token, pool, settler, usd(7))  # e.g. fees swept into a pool before its first LP
    income_at = now()
    assert pool.totalSupply() == 0 and pool.managed_assets() == usd(7) and pool.totalAssets() == 0
    assert pool.previewDeposit(usd(1000)) == usd(1000) * VIRTUAL_SHARES
    shares = deposit(token, pool, lp, usd(1000)).return_value
    # the deposit lands a second or more after the income: what vested by then (7 / 86,400 per
    # second) prices the first shares, so their count is not fixed; their value is par
    assert shares <= usd(1000) * VIRTUAL_SHARES
    assert usd(1000) - 2 <= pool.convertToAssets(shares) <= usd(1000) + usd(7)
    # what vested before the deposit (7 / 86,400 per second, however long a loaded machine took
    # to send it) priced the shares: part of it stays with the virtual shares; the rest is the holder's
    vested_before = usd(7) * (now() - income_at) // 86400 + 1
    chain.mine(1, timestamp=now() + 86400)
    assert usd(1007) - vested_before - 1 <= pool.convertToAssets(shares) <= usd(1007)
