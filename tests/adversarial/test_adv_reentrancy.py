"""Reentrancy through a hostile quote token (GMX v1 2025 class: reentrancy skewing a share
price). ReentrantToken calls back into the vault / pool from inside transfer/transferFrom,
from its own address (the attacker's contract, which holds collateral and shares of its own).
Every contract runs `# pragma nonreentrancy on`: the callback must revert, the outer call must
settle normally and no value may move through the callback. A control call outside the hook
shows each callback would have moved value otherwise."""

import pytest
from ape import project

from backstop.sim.agents import Agent, Env

from adv_helpers import deploy_hostile_market

U = 10**6
MAX = 2**256 - 1


@pytest.fixture(scope="module")
def hostile(deployer, treasury, attacker, attacker2):
    token, vault, pool, backstop = deploy_hostile_market(deployer, treasury)
    # the attacker's contract (the token itself) holds 1,000 collateral and 1,000 of pool assets
    token.mint(token, 3_000 * U, sender=deployer)
    token.execute(token, token.approve.encode_input(vault.address, MAX), sender=attacker)
    token.execute(token, token.approve.encode_input(pool.address, MAX), sender=attacker)
    token.execute(vault, vault.deposit.encode_input(0, 1_000 * U), sender=attacker)
    token.execute(pool, pool.deposit.encode_input(1_000 * U, token.address), sender=attacker)
    shares = int(pool.balanceOf(token))
    token.execute(pool, pool.request_redeem.encode_input(shares), sender=attacker)
    # an ordinary user of the hostile-token market
    for account in (attacker2,):
        token.mint(account, 10_000 * U, sender=account)
        token.approve(vault, MAX, sender=account)
        token.approve(pool, MAX, sender=account)
    return token, vault, pool, backstop


def balances(token, vault, pool, backstop):
    return {
        "vault": int(token.balanceOf(vault)),
        "pool": int(token.balanceOf(pool)),
        "backstop": int(token.balanceOf(backstop)),
        "token": int(token.balanceOf(token)),
        "token collateral": int(vault.collateral(token, 0)),
        "token shares": int(pool.balanceOf(token)),
        "pool managed": int(pool.managed_assets()),
    }


def _assert_callback_blocked(token):
    assert int(token.callbacks()) == 1
    assert token.last_success() is False
    # Vyper's nonreentrancy lock reverts with empty data (no reason string): the callback
    # was stopped by the lock, not by a business check (the control call below succeeds)
    assert bytes(token.last_return()) == b""


@pytest.mark.parametrize("outer", ["deposit", "withdraw"])
def test_vault_callback_withdraw_is_blocked(hostile, attacker2, outer):
    token, vault, pool, backstop = hostile
    vault.deposit(0, 100 * U, sender=attacker2)
    before = balances(*hostile)
    token.arm(vault, vault.withdraw.encode_input(0, 500 * U), sender=attacker2)
    if outer == "deposit":
        vault.deposit(0, 100 * U, sender=attacker2)
        delta = 100 * U
    else:
        vault.withdraw(0, 50 * U, sender=attacker2)
        delta = -50 * U
    _assert_callback_blocked(token)
    after = balances(*hostile)
    assert after["vault"] == before["vault"] + delta
    assert {k: v for k, v in after.items() if k != "vault"} == {k: v for k, v in before.items() if k != "vault"}
    assert int(vault.collateral(attacker2, 0)) == 100 * U + delta
    # control: outside the hook the same call moves value
    token.execute(vault, vault.withdraw.encode_input(0, 500 * U), sender=attacker2)
    assert int(vault.collateral(token, 0)) == 500 * U


@pytest.mark.parametrize("callback", ["deposit", "redeem", "request_redeem"])
def test_pool_callback_during_deposit_is_blocked(hostile, attacker2, callback):
    token, vault, pool, backstop = hostile
    shares = int(pool.balanceOf(token))
    data = {
        "deposit": pool.deposit.encode_input(100 * U, token.address),
        "redeem": pool.redeem.encode_input(shares, token.address, token.address),
        "request_redeem": pool.request_redeem.encode_input(shares // 2),
    }[callback]
    before = balances(*hostile)
    request = pool.pending_request(token)
    token.arm(pool, data, sender=attacker2)
    minted = pool.deposit(100 * U, attacker2, sender=attacker2)
    _assert_callback_blocked(token)
    after = balances(*hostile)
    assert after["pool"] == before["pool"] + 100 * U and after["pool managed"] == before["pool managed"] + 100 * U
    for key in ("vault", "backstop", "token", "token collateral", "token shares"):
        assert after[key] == before[key], key
    assert pool.pending_request(token) == request
    # control: outside the hook the same call goes through
    token.execute(pool, data, sender=attacker2)


def test_pool_callback_during_redeem_is_blocked(hostile, attacker2):
    token, vault, pool, backstop = hostile
    pool.deposit(100 * U, attacker2, sender=attacker2)
    mine = int(pool.balanceOf(attacker2))
    pool.request_redeem(mine, sender=attacker2)
    theirs = int(pool.balanceOf(token))
    before = balances(*hostile)
    token.arm(pool, pool.redeem.encode_input(theirs, token.address, token.address), sender=attacker2)
    paid = int(pool.previewRedeem(mine))
    pool.redeem(mine, attacker2, attacker2, sender=attacker2)
    _assert_callback_blocked(token)
    after = balances(*hostile)
    assert after["pool"] == before["pool"] - paid
    assert after["token shares"] == before["token shares"] == theirs
    assert after["token"] == before["token"]


def test_share_price_read_during_transfer_is_not_skewed(hostile, attacker2):
    """Read-only reentrancy: a view of the pool called from inside its own deposit either
    reverts (locked) or returns the price from before the deposit (no half-updated state)."""
    token, vault, pool, backstop = hostile
    probe = 10**12
    price_before = int(pool.convertToAssets(probe))
    token.arm(pool, pool.convertToAssets.encode_input(probe), sender=attacker2)
    pool.deposit(5_000 * U, attacker2, sender=attacker2)
    assert int(token.callbacks()) == 1
    if token.last_success():
        seen = int.from_bytes(bytes(token.last_return())[:32], "big")
        assert seen == price_before
    assert int(pool.convertToAssets(probe)) in (price_before, price_before - 1, price_before + 1)
