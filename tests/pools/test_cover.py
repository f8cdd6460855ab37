"""Loss waterfall: pool first, then backstop within the member's cap; unpaid is reported;
per-block limit; segment isolation (invariant 9); draw cap per member pool per window."""

import ape
from ape import chain

from backstop.core.units import MAX_UINT256
from pool_helpers import DAY, deposit, next_tx_at, now


def _cover(pool, backstop, settler, token, amount):
    before = token.balanceOf(settler)
    receipt = pool.cover(amount, sender=settler)
    [log] = receipt.decode_logs(pool.Cover)
    paid = token.balanceOf(settler) - before
    assert receipt.return_value == paid == log.paid_by_pool + log.paid_by_backstop
    assert log.requested == amount == log.paid_by_pool + log.paid_by_backstop + log.unpaid
    draws = list(receipt.decode_logs(backstop.Draw))
    return receipt, log, draws


def test_pool_pays_first(pool, backstop, token, settler, lp, usd):
    deposit(token, pool, lp, usd(1000))
    deposit(token, backstop, lp, usd(1000))
    price = pool.assets_per_share()
    receipt, log, draws = _cover(pool, backstop, settler, token, usd(100))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (usd(100), 0, 0)
    assert draws == []
    assert pool.totalAssets() == usd(900) and token.balanceOf(pool) == usd(900)
    assert pool.assets_per_share() < price
    assert backstop.totalAssets() == usd(1000)


def test_backstop_pays_up_to_cap_rest_unpaid(pool, backstop, token, settler, lp, usd):
    deposit(token, pool, lp, usd(100))
    deposit(token, backstop, lp, usd(1000))
    assert pool.max_cover() == usd(100) + usd(250)
    receipt, log, [draw] = _cover(pool, backstop, settler, token, usd(500))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (usd(100), usd(250), usd(150))
    assert (draw.member, draw.requested, draw.paid, draw.recipient) == (
        pool.address, usd(400), usd(250), settler.address)
    assert pool.totalAssets() == 0 and backstop.totalAssets() == usd(750)
    assert backstop.draw_capacity(pool) == 0 and pool.max_cover() == 0
    # within the same window the backstop pays nothing more for this member: all unpaid, evented
    receipt, log, [draw] = _cover(pool, backstop, settler, token, usd(10))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (0, 0, usd(10))
    assert draw.paid == 0


def test_draw_cap_resets_after_window(pool, backstop, token, settler, lp, usd):
    deposit(token, backstop, lp, usd(1000))
    receipt, log, _ = _cover(pool, backstop, settler, token, usd(300))
    assert log.paid_by_backstop == usd(250) and log.unpaid == usd(50)
    start = receipt.timestamp
    assert backstop.draw_state(pool) == (start, usd(250), usd(250))
    next_tx_at(start + DAY - 1)
    _, log, _ = _cover(pool, backstop, settler, token, usd(10))
    assert log.paid_by_backstop == 0
    next_tx_at(start + DAY)
    receipt, log, _ = _cover(pool, backstop, settler, token, usd(300))
    # new window: cap = 25% of the 750 left
    assert log.paid_by_backstop == usd(750) // 4 and log.unpaid == usd(300) - usd(750) // 4
    assert backstop.draw_state(pool) == (receipt.timestamp, usd(750) // 4, usd(750) // 4)


def test_segment_isolation(pool, alts_pool, backstop, token, settler, lp, lp2, usd):
    deposit(token, pool, lp, usd(100))
    deposit(token, alts_pool, lp2, usd(400))
    deposit(token, backstop, lp, usd(1000))
    alts_before = (alts_pool.totalAssets(), token.balanceOf(alts_pool), alts_pool.assets_per_share())
    _, log, _ = _cover(pool, backstop, settler, token, usd(10_000))
    assert (log.paid_by_pool, log.paid_by_backstop) == (usd(100), usd(250))
    # the majors deficit never reached the alts pool
    assert (alts_pool.totalAssets(), token.balanceOf(alts_pool), alts_pool.assets_per_share()) == alts_before
    # the alts pool keeps its own cap at the backstop (25% of what the backstop holds now)
    assert backstop.draw_capacity(alts_pool) == usd(750) // 4
    _, log, [draw] = _cover(alts_pool, backstop, settler, token, usd(1000))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (usd(400), usd(750) // 4, usd(600) - usd(750) // 4)
    assert draw.member == alts_pool.address
    assert pool.totalAssets() == 0


def test_per_block_limit(pool, backstop, token, settler, lp, deployer, usd):
    deposit(token, pool, lp, usd(1000))
    deposit(token, backstop, lp, usd(1000))
    pool.set_max_cover_per_block(usd(60), sender=deployer)
    assert pool.cover_capacity() == usd(60)
    _, log, _ = _cover(pool, backstop, settler, token, usd(100))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (usd(60), usd(40), 0)
    # the rest of this block: nothing left for the pool (views run in the cover's block)
    assert pool.cover_capacity() == 0
    _, log, _ = _cover(pool, backstop, settler, token, usd(100))  # next block: limit again
    assert (log.paid_by_pool, log.paid_by_backstop) == (usd(60), usd(40))


def test_backstop_draw_only_by_members(pool, backstop, token, settler, attacker, other, deployer, lp, usd):
    deposit(token, backstop, lp, usd(1000))
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), attacker, sender=attacker)
    with ape.reverts("backstop: not a member"):
        backstop.top_up(usd(10), sender=attacker)
    backstop.set_member(other, 2500, sender=deployer)
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), attacker, sender=attacker)  # another address is a member, not this one
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), settler, sender=settler)  # the vault cannot draw directly either
    backstop.set_member(other, 0, sender=deployer)  # removed: no longer draws
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), other, sender=other)
    assert backstop.totalAssets() == usd(1000)


def test_unregistered_pool_reports_unpaid(pool, backstop, token, settler, lp, deployer, usd):
    deposit(token, pool, lp, usd(10))
    deposit(token, backstop, lp, usd(1000))
    backstop.set_member(pool, 0, sender=deployer)
    assert pool.max_cover() == usd(10)
    _, log, draws = _cover(pool, backstop, settler, token, usd(50))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (usd(10), 0, usd(40)) and draws == []


def test_cover_with_empty_pool_and_backstop(pool, backstop, token, settler, usd):
    _, log, [draw] = _cover(pool, backstop, settler, token, usd(5))
    assert (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (0, 0, usd(5))
    assert draw.paid == 0
    assert pool.max_cover_per_block() == MAX_UINT256


def test_cover_reach_ignores_the_per_block_limit(pool, backstop, token, settler, lp, deployer, usd):
    """cover_reach = managed assets + backstop draw capacity, whatever the per-block limit: a
    consumed limit never makes a deficit look uncovered while the pool still holds funds."""
    deposit(token, pool, lp, usd(1000))
    deposit(token, backstop, lp, usd(1000))
    assert pool.cover_reach() == usd(1000) + usd(250) == pool.max_cover()
    pool.set_max_cover_per_block(usd(60), sender=deployer)
    assert pool.cover_reach() == usd(1250)  # the limit is ignored
    assert pool.max_cover() == usd(60) + usd(250)
    _, log, _ = _cover(pool, backstop, settler, token, usd(100))
    assert (log.paid_by_pool, log.paid_by_backstop) == (usd(60), usd(40))
    # views run in the cover's block: the pool's limit is consumed for this block
    assert pool.cover_capacity() == 0
    assert pool.max_cover() == backstop.draw_capacity(pool) == usd(210)
    assert pool.cover_reach() == usd(940) + usd(210)
    # unregistered at the backstop: the pool's own assets only
    backstop.set_member(pool, 0, sender=deployer)
    assert pool.cover_reach() == usd(940)
    # an empty pool and a spent backstop cap reach nothing
    pool.set_max_cover_per_block(MAX_UINT256, sender=deployer)
    backstop.set_member(pool, 2500, sender=deployer)
    _cover(pool, backstop, settler, token, usd(10_000))
    assert pool.cover_reach() == 0 == pool.max_cover()


def _send_unmined(contract, method, *args, sender):
    """Submit a transaction without mining it (automine must be off); returns its hash."""
    data = getattr(contract, method).encode_input(*args)
    tx = {"from": sender.address, "to": contract.address, "data": "0x" + bytes(data).hex(), "gas": hex(500_000)}
    return chain.provider.make_request("eth_sendTransaction", [tx])


def test_covers_in_one_block_sum_against_the_limit(pool, backstop, token, settler, lp, keeper, deployer, usd):
    """Per-block limit 100. Three covers in ONE block (automine off): 70 then 50 then 30. The
    first gets 70 from the pool; the second only the 30 left of the block's limit, its other 20
    from the backstop; the third nothing from the pool, all 30 from the backstop. The next block
    has the full limit again."""
    deposit(token, pool, lp, usd(1000))
    deposit(token, backstop, lp, usd(1000))
    pool.set_max_cover_per_block(usd(100), sender=deployer)
    pool.grantRole(pool.COVER_ROLE(), keeper, sender=deployer)  # a second cover caller (the engine)
    token.mint(keeper, 1, sender=keeper)  # holds some quote token already, as the engine does
    chain.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = [
            _send_unmined(pool, "cover", usd(70), sender=settler),
            _send_unmined(pool, "cover", usd(50), sender=keeper),
            _send_unmined(pool, "cover", usd(30), sender=settler),
        ]
        chain.provider.make_request("evm_mine", [])
    finally:
        chain.provider.make_request("evm_setAutomine", [True])
    receipts = [chain.provider.get_receipt(h) for h in hashes]
    assert len({r.block_number for r in receipts}) == 1  # all three in the same block
    covers = [r.decode_logs(pool.Cover)[0] for r in receipts]
    assert [(c.requested, c.paid_by_pool, c.paid_by_backstop, c.unpaid) for c in covers] == [
        (usd(70), usd(70), 0, 0),
        (usd(50), usd(30), usd(20), 0),
        (usd(30), 0, usd(30), 0),
    ]
    assert pool.managed_assets() == usd(900) and backstop.managed_assets() == usd(950)
    # the next block has the whole limit again
    _, log, _ = _cover(pool, backstop, settler, token, usd(150))
    assert (log.paid_by_pool, log.paid_by_backstop) == (usd(100), usd(50))
