"""Bad input: zero amounts, missing roles, deposit cap, pause, parameter bounds, hostile token."""

import ape
import pytest
from ape import project

from backstop.core.units import MAX_UINT256, VIRTUAL_SHARES
from pool_helpers import MISSING_ROLE, COOLDOWN, deposit, next_tx_at


def test_zero_amounts(pool, backstop, token, settler, lp, deployer, usd):
    deposit(token, pool, lp, usd(10))
    with ape.reverts("pool: zero amount"):
        pool.deposit(0, lp, sender=lp)
    with ape.reverts("pool: zero amount"):
        pool.mint(0, lp, sender=lp)
    with ape.reverts("pool: zero amount"):
        pool.redeem(0, lp, lp, sender=lp)
    with ape.reverts("pool: zero amount"):
        pool.withdraw(0, lp, lp, sender=lp)
    with ape.reverts("pool: zero amount"):
        pool.request_redeem(0, sender=lp)
    with ape.reverts("pool: zero amount"):
        pool.notify_income(0, sender=settler)
    with ape.reverts("pool: zero amount"):
        pool.cover(0, sender=settler)
    with ape.reverts("pool: zero amount"):
        backstop.deposit(0, lp, sender=lp)
    backstop.grantRole(backstop.INCOME_ROLE(), settler, sender=deployer)
    with ape.reverts("backstop: zero amount"):
        backstop.notify_income(0, sender=settler)
    backstop.set_member(settler, 2500, sender=deployer)
    with ape.reverts("backstop: zero amount"):
        backstop.draw(0, settler, sender=settler)
    with ape.reverts("backstop: zero amount"):
        backstop.top_up(0, sender=settler)


def test_dust_deposit_and_redeem(pool, token, settler, lp, lp2, usd):
    deposit(token, pool, lp, usd(1000))
    pool.cover(usd(999), sender=settler)  # price now ~1/1000
    token.mint(lp2, 1, sender=lp2)
    token.approve(pool, 1, sender=lp2)
    assert pool.previewDeposit(1) > 0  # virtual shares keep 1 wei depositable here
    receipt = pool.request_redeem(1, sender=lp)
    next_tx_at(receipt.timestamp + COOLDOWN)
    with ape.reverts("pool: zero assets"):
        pool.redeem(1, lp, lp, sender=lp)


def test_unauthorized_income_cover_draw(pool, backstop, token, attacker, lp, usd):
    deposit(token, pool, lp, usd(100))
    token.mint(attacker, usd(10), sender=attacker)
    token.approve(pool, usd(10), sender=attacker)
    with ape.reverts(MISSING_ROLE):
        pool.notify_income(usd(10), sender=attacker)
    with ape.reverts(MISSING_ROLE):
        pool.cover(usd(10), sender=attacker)
    with ape.reverts(MISSING_ROLE):
        backstop.notify_income(usd(10), sender=attacker)
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), attacker, sender=attacker)
    with ape.reverts("backstop: not a member"):
        backstop.top_up(usd(10), sender=attacker)
    assert pool.totalAssets() == usd(100)


@pytest.mark.parametrize(
    "call",
    [
        lambda p, b, a: p.set_deposit_cap(1, sender=a),
        lambda p, b, a: p.set_target_size(1, sender=a),
        lambda p, b, a: p.set_redeem_delays(1, 3600, sender=a),
        lambda p, b, a: p.set_income_vesting(1, sender=a),
        lambda p, b, a: p.set_backstop_income_share(1, sender=a),
        lambda p, b, a: p.set_max_cover_per_block(1, sender=a),
        lambda p, b, a: p.pause(sender=a),
        lambda p, b, a: b.set_member(a, 1, sender=a),
        lambda p, b, a: b.set_draw_window(1, sender=a),
        lambda p, b, a: b.set_global_draw_cap(1, sender=a),
        lambda p, b, a: b.set_deposit_cap(1, sender=a),
        lambda p, b, a: b.set_redeem_delays(1, 3600, sender=a),
        lambda p, b, a: b.set_income_vesting(1, sender=a),
        lambda p, b, a: b.pause(sender=a),
    ],
    ids=[
        "deposit_cap", "target_size", "redeem_delays", "income_vesting", "backstop_share",
        "max_cover", "pause", "bs_member", "bs_draw_window", "bs_global_draw_cap", "bs_deposit_cap",
        "bs_redeem_delays", "bs_income_vesting", "bs_pause",
    ],
)
def test_param_setters_need_roles(pool, backstop, attacker, call):
    with ape.reverts(MISSING_ROLE):
        call(pool, backstop, attacker)


def test_guardian_can_only_pause(pool, deployer, keeper):
    pool.grantRole(pool.GUARDIAN_ROLE(), keeper, sender=deployer)
    pool.pause(sender=keeper)
    assert pool.paused()
    with ape.reverts(MISSING_ROLE):
        pool.unpause(sender=keeper)
    with ape.reverts(MISSING_ROLE):
        pool.set_deposit_cap(0, sender=keeper)
    with ape.reverts("pool: pause unchanged"):
        pool.pause(sender=keeper)
    pool.unpause(sender=deployer)
    assert not pool.paused()


def test_deposit_cap(pool, token, lp, deployer, usd):
    pool.set_deposit_cap(usd(1000), sender=deployer)
    assert pool.maxDeposit(lp) == usd(1000)
    deposit(token, pool, lp, usd(600))
    assert pool.maxDeposit(lp) == usd(400)
    assert pool.maxMint(lp) == pool.previewDeposit(usd(400))
    token.mint(lp, usd(401), sender=lp)
    token.approve(pool, usd(401), sender=lp)
    with ape.reverts("pool: deposit cap exceeded"):
        pool.deposit(usd(401), lp, sender=lp)
    pool.deposit(usd(400), lp, sender=lp)
    assert pool.maxDeposit(lp) == 0
    pool.set_deposit_cap(MAX_UINT256, sender=deployer)
    # no deposit cap: the only limit left is the share supply (2**160 - 1, the width of a redeem
    # request's shares field); maxDeposit is the most assets whose shares still fit
    supply, managed = pool.totalSupply(), pool.managed_assets()
    room = 2**160 - 1 - supply
    assert pool.maxMint(lp) == room
    max_assets = -(-(room + 1) * (managed + 1) // (supply + VIRTUAL_SHARES)) - 1
    assert pool.maxDeposit(lp) == max_assets
    assert pool.previewDeposit(max_assets) <= room < pool.previewDeposit(max_assets + 1)


def test_paused_blocks_deposits_not_redeems(pool, token, lp, deployer, usd):
    deposit(token, pool, lp, usd(100))
    shares = pool.balanceOf(lp)
    receipt = pool.request_redeem(shares, sender=lp)
    pool.pause(sender=deployer)
    assert pool.maxDeposit(lp) == 0 and pool.maxMint(lp) == 0
    token.mint(lp, usd(10), sender=lp)
    token.approve(pool, usd(10), sender=lp)
    with ape.reverts("pool: paused"):
        pool.deposit(usd(10), lp, sender=lp)
    with ape.reverts("pool: paused"):
        pool.mint(10**12, lp, sender=lp)
    next_tx_at(receipt.timestamp + COOLDOWN)
    pool.redeem(shares, lp, lp, sender=lp)  # LPs are never locked in by a pause
    assert token.balanceOf(lp) == usd(110)


def test_paused_pool_still_earns_and_covers(pool, token, settler, lp, deployer, usd):
    deposit(token, pool, lp, usd(100))
    pool.pause(sender=deployer)
    token.mint(settler, usd(10), sender=settler)
    token.approve(pool, usd(10), sender=settler)
    pool.notify_income(usd(10), sender=settler)
    pool.cover(usd(5), sender=settler)
    assert pool.managed_assets() == usd(100) + usd(9) - usd(5)


def test_param_bounds(pool, backstop, deployer):
    with ape.reverts("pool: bps > 10000"):
        pool.set_backstop_income_share(10_001, sender=deployer)
    with ape.reverts("pool: bad window"):
        pool.set_redeem_delays(0, 3599, sender=deployer)
    with ape.reverts("pool: cooldown too long"):
        pool.set_redeem_delays(366 * 86400, 86400, sender=deployer)
    with ape.reverts("pool: vesting too long"):
        pool.set_income_vesting(366 * 86400, sender=deployer)
    with ape.reverts("backstop: bps > 10000"):
        backstop.set_member(deployer, 10_001, sender=deployer)
    with ape.reverts("backstop: bad window"):
        backstop.set_draw_window(0, sender=deployer)
    with ape.reverts("backstop: bad window"):
        backstop.set_draw_window(365 * 86400 + 1, sender=deployer)


def test_fee_on_transfer_token_rejected(deployer, settler, lp):
    fot = project.FeeOnTransferToken.deploy(6, sender=deployer)
    backstop = project.BackstopPool.deploy(fot, "B", "B", MAX_UINT256, sender=deployer)
    pool = project.InsurancePool.deploy(fot, "P", "P", 0, settler, backstop, MAX_UINT256, 0, sender=deployer)
    fot.mint(lp, 10**9, sender=lp)
    fot.approve(pool, 10**9, sender=lp)
    with ape.reverts("pool: fee-on-transfer token"):
        pool.deposit(10**9, lp, sender=lp)
    fot.mint(settler, 10**9, sender=settler)
    fot.approve(pool, 10**9, sender=settler)
    with ape.reverts("pool: fee-on-transfer token"):
        pool.notify_income(10**9, sender=settler)


def test_backstop_asset_must_match(token, deployer, settler):
    other_token = project.MockERC20.deploy("Other", "OTH", 6, sender=deployer)
    backstop = project.BackstopPool.deploy(other_token, "B", "B", MAX_UINT256, sender=deployer)
    with ape.reverts("pool: backstop asset mismatch"):
        project.InsurancePool.deploy(token, "P", "P", 0, settler, backstop, MAX_UINT256, 0, sender=deployer)
