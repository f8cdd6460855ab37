"""Redeem requests pack their shares in 160 bits: the share supply is capped at 2**160 - 1 so a
request always holds exactly what was asked. Regression: an 18-decimal pool nearly wiped out by
a cover, then refilled by a large deposit, used to mint more shares than a request can hold."""

from types import SimpleNamespace

import ape
import pytest
from ape import project

from backstop.client.pools import deploy_pools

MAX_SHARES = 2**160 - 1
ONE = 10**18  # one whole unit of the 18-decimal quote token


@pytest.fixture
def pool18(deployer, settler):
    token = project.MockERC20.deploy("DAI (local)", "DAI", 18, sender=deployer)
    system = SimpleNamespace(token=token, vault=settler, segments={"majors": 0})
    pools, backstop = deploy_pools(system, deployer)
    return token, pools["majors"], backstop


def _fund(token, pool, account, amount):
    token.mint(account, amount, sender=account)
    token.approve(pool, amount, sender=account)


def test_share_supply_overflow_after_near_wipe_out_18_decimals(pool18, settler, lp, lp2, usd):
    token, pool, backstop = pool18
    _fund(token, pool, lp, ONE)
    pool.deposit(ONE, lp, sender=lp)
    assert pool.totalSupply() == ONE * 10**6  # 10**24 shares for one unit (24 share decimals)
    # a cover takes all but one wei: 10**24 shares now back 1 wei (the backstop is empty)
    receipt = pool.cover(ONE - 1, sender=settler)
    [cover] = receipt.decode_logs(pool.Cover)
    assert (cover.paid_by_pool, cover.unpaid) == (ONE - 1, 0)
    assert pool.managed_assets() == 1
    # 10 million units would now mint ~5e48 shares > 2**160 - 1: the deposit reverts instead
    big = 10_000_000 * ONE
    _fund(token, pool, lp2, big)
    assert pool.previewDeposit(big) + pool.totalSupply() > MAX_SHARES
    with ape.reverts("pool: share supply overflow"):
        pool.deposit(big, lp2, sender=lp2)
    with ape.reverts("pool: share supply overflow"):
        pool.mint(MAX_SHARES - pool.totalSupply() + 1, lp2, sender=lp2)
    # maxDeposit is exactly the most that still fits, and it goes through
    most = pool.maxDeposit(lp2)
    assert 0 < most < big
    assert pool.totalSupply() + pool.previewDeposit(most + 1) > MAX_SHARES
    pool.deposit(most, lp2, sender=lp2)
    assert pool.totalSupply() <= MAX_SHARES
    assert pool.maxDeposit(lp2) == 0 and pool.maxMint(lp2) == MAX_SHARES - pool.totalSupply()
    # every request fits its field: the whole balance is recorded exactly, not mod 2**160
    balance = pool.balanceOf(lp2)
    assert balance > 2**159
    pool.request_redeem(balance, sender=lp2)
    assert pool.pending_request(lp2)[0] == balance
    # and the newcomer's shares are worth what it paid (rounding in the pool's favour only)
    assert most - 2 <= pool.convertToAssets(balance) <= most
