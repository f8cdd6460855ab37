"""Withdrawals: request -> cooldown -> window (invariant 8), and requested shares bear losses."""

import ape

from pool_helpers import COOLDOWN, WINDOW, deposit, mine_at, next_tx_at, now


def _requested(pool, token, lp, usd, amount=1000):
    deposit(token, pool, lp, usd(amount))
    shares = pool.balanceOf(lp)
    receipt = pool.request_redeem(shares, sender=lp)
    return shares, receipt


def test_request_records_window(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    t = receipt.timestamp
    assert pool.pending_request(lp) == (shares, t + COOLDOWN, t + COOLDOWN + WINDOW)
    [log] = receipt.decode_logs(pool.RedeemRequested)
    assert (log.owner, log.shares, log.unlock_at, log.expires_at) == (lp.address, shares, t + COOLDOWN, t + COOLDOWN + WINDOW)
    assert pool.balanceOf(lp) == shares  # requested shares stay in the balance
    assert pool.maxRedeem(lp) == 0 and pool.maxWithdraw(lp) == 0


def test_one_second_before_unlock_reverts(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    unlock = receipt.timestamp + COOLDOWN
    mine_at(unlock - 2)
    next_tx_at(unlock - 1)
    with ape.reverts("pool: no redeemable request"):
        pool.redeem(shares, lp, lp, sender=lp)
    mine_at(unlock - 1)
    assert pool.maxRedeem(lp) == 0


def test_redeem_at_unlock_works(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    unlock = receipt.timestamp + COOLDOWN
    mine_at(unlock)
    assert pool.maxRedeem(lp) == shares and pool.maxWithdraw(lp) == usd(1000)
    pool.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) == usd(1000) and pool.balanceOf(lp) == 0
    assert pool.pending_request(lp) == (0, 0, 0)


def test_window_edges(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    expires = receipt.timestamp + COOLDOWN + WINDOW
    mine_at(expires)
    assert pool.maxRedeem(lp) == shares  # the last second of the window is inside
    mine_at(expires + 1)
    assert pool.maxRedeem(lp) == 0 and pool.maxWithdraw(lp) == 0
    with ape.reverts("pool: no redeemable request"):
        pool.redeem(shares, lp, lp, sender=lp)


def test_redeem_in_last_second_of_window(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    next_tx_at(receipt.timestamp + COOLDOWN + WINDOW)
    pool.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) == usd(1000)


def test_expired_request_needs_a_new_request(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    next_tx_at(receipt.timestamp + COOLDOWN + WINDOW + 1)
    receipt = pool.request_redeem(shares, sender=lp)  # starts a fresh cooldown
    assert pool.maxRedeem(lp) == 0
    next_tx_at(receipt.timestamp + COOLDOWN)
    pool.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) == usd(1000)


def test_cancelled_request(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    cancel = pool.cancel_redeem(sender=lp)
    [log] = cancel.decode_logs(pool.RedeemCancelled)
    assert (log.owner, log.shares) == (lp.address, shares)
    assert pool.pending_request(lp) == (0, 0, 0)
    next_tx_at(receipt.timestamp + COOLDOWN)
    with ape.reverts("pool: no redeemable request"):
        pool.redeem(shares, lp, lp, sender=lp)
    with ape.reverts("pool: no request"):
        pool.cancel_redeem(sender=lp)


def test_new_request_replaces_old(pool, token, lp, usd):
    shares, first = _requested(pool, token, lp, usd)
    next_tx_at(first.timestamp + COOLDOWN - 10)
    second = pool.request_redeem(shares // 2, sender=lp)
    t = second.timestamp
    assert pool.pending_request(lp) == (shares // 2, t + COOLDOWN, t + COOLDOWN + WINDOW)
    mine_at(first.timestamp + COOLDOWN)  # the old unlock time no longer counts
    assert pool.maxRedeem(lp) == 0
    mine_at(t + COOLDOWN)
    assert pool.maxRedeem(lp) == shares // 2


def test_partial_redeem_keeps_rest_of_request(pool, token, lp, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    next_tx_at(receipt.timestamp + COOLDOWN)
    pool.redeem(shares // 4, lp, lp, sender=lp)
    assert pool.pending_request(lp)[0] == shares - shares // 4
    assert pool.maxRedeem(lp) == shares - shares // 4
    with ape.reverts("pool: exceeds request"):
        pool.redeem(shares, lp, lp, sender=lp)
    pool.withdraw(usd(100), lp, lp, sender=lp)
    assert token.balanceOf(lp) == usd(350)


def test_redeem_only_requested_shares(pool, token, lp, usd):
    deposit(token, pool, lp, usd(1000))
    shares = pool.balanceOf(lp)
    receipt = pool.request_redeem(shares // 10, sender=lp)
    next_tx_at(receipt.timestamp + COOLDOWN)
    with ape.reverts("pool: exceeds request"):
        pool.redeem(shares // 10 + 1, lp, lp, sender=lp)
    with ape.reverts("pool: request exceeds balance"):
        pool.request_redeem(shares + 1, sender=lp)


def test_transfer_clamps_request(pool, token, lp, lp2, usd):
    """Shares moved away and back must not ride an old request past the cooldown."""
    shares, receipt = _requested(pool, token, lp, usd)
    pool.transfer(lp2, shares - 100, sender=lp)
    assert pool.pending_request(lp)[0] == 100
    pool.transfer(lp, shares - 100, sender=lp2)  # back again: the request does not grow
    assert pool.pending_request(lp)[0] == 100
    mine_at(receipt.timestamp + COOLDOWN)
    assert pool.maxRedeem(lp) == 100
    # transferFrom by a spender clamps too
    pool.approve(lp2, shares, sender=lp)
    pool.transferFrom(lp, lp2, shares, sender=lp2)
    assert pool.pending_request(lp)[0] == 0 and pool.maxRedeem(lp) == 0


def test_redeem_for_owner_by_approved_spender(pool, token, lp, keeper, usd):
    shares, receipt = _requested(pool, token, lp, usd)
    next_tx_at(receipt.timestamp + COOLDOWN)
    with ape.reverts("erc20: insufficient allowance"):
        pool.redeem(shares, keeper, lp, sender=keeper)
    pool.approve(keeper, shares, sender=lp)
    pool.redeem(shares, keeper, lp, sender=keeper)
    assert token.balanceOf(keeper) == usd(1000) and pool.allowance(lp, keeper) == 0


def test_requested_shares_bear_a_later_loss(pool, token, settler, lp, lp2, usd):
    """A loss becomes visible, lp requests right away: it cannot escape the cover that
    follows (same proportional loss as an LP who never requested)."""
    deposit(token, pool, lp2, usd(1000))
    shares, receipt = _requested(pool, token, lp, usd)
    pool.cover(usd(500), sender=settler)  # later block than the request
    next_tx_at(receipt.timestamp + COOLDOWN)
    pool.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) <= usd(750)
    assert token.balanceOf(lp) >= usd(750) - 1
    assert pool.convertToAssets(pool.balanceOf(lp2)) >= usd(750) - 1


def test_request_after_loss_during_cooldown_cannot_front_run(pool, token, settler, lp, lp2, usd):
    deposit(token, pool, lp2, usd(1000))
    shares, receipt = _requested(pool, token, lp, usd)
    # the loss lands inside the window, one block before lp redeems
    next_tx_at(receipt.timestamp + COOLDOWN)
    pool.cover(usd(1000), sender=settler)
    pool.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) <= usd(500)
