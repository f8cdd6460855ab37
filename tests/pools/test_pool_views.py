"""backstop/pools.py: deploy_pools parameters, PoolView snapshots and trailing APY."""

from types import SimpleNamespace

from ape import chain, project

from backstop.client.pools import deploy_pools, pool_view, trailing_apy
from pool_helpers import COOLDOWN, DAY, deposit, income, mine_at, next_tx_at


def test_deploy_pools_with_params(deployer, settler, token):
    system = SimpleNamespace(token=token, vault=settler, segments={"majors": 0, "alts": 1, "exotics": 2})
    params = {
        "cooldown": 3 * DAY, "redeem_window": DAY, "income_vesting": 2 * DAY, "draw_cap_bps": 1000,
        "global_draw_cap_bps": 3000,
        "backstop_income_share_bps": 0, "max_cover_per_block": 123, "deposit_cap": 10**12,
        "segments": {"exotics": {"deposit_cap": 10**9, "target_size": 5}},
    }
    pools, backstop = deploy_pools(system, deployer, params)
    assert set(pools) == {"majors", "alts", "exotics"}
    for label, pool in pools.items():
        assert pool.segment() == system.segments[label]
        assert backstop.member_cap_bps(pool) == 1000  # a member by address, with the draw cap given
        assert backstop.hasRole(backstop.INCOME_ROLE(), pool)
        assert pool.hasRole(pool.COVER_ROLE(), settler) and pool.hasRole(pool.INCOME_ROLE(), settler)
        assert (pool.cooldown(), pool.redeem_window(), pool.income_vesting()) == (3 * DAY, DAY, 2 * DAY)
        assert pool.backstop_income_share_bps() == 0 and pool.max_cover_per_block() == 123
    assert pools["majors"].deposit_cap() == 10**12
    assert pools["exotics"].deposit_cap() == 10**9 and pools["exotics"].target_size() == 5
    assert backstop.member_count() == 3 and backstop.cooldown() == 3 * DAY
    assert backstop.global_draw_cap_bps() == 3000 and backstop.draw_window() == DAY


def test_pool_view_snapshot(pool, token, settler, lp, deployer, usd):
    pool.set_backstop_income_share(0, sender=deployer)
    deposit(token, pool, lp, usd(1000))
    t0 = income(token, pool, settler, usd(100)).timestamp
    receipt = pool.request_redeem(pool.balanceOf(lp) // 2, sender=lp)
    mine_at(t0 + DAY // 2)
    view = pool_view(pool, lp)
    assert view.total_assets == usd(1050) and view.managed_assets == usd(1100)
    assert view.vested_income == usd(50) and view.unvested_income == usd(50)
    assert view.vesting_end == t0 + DAY
    assert view.lp_shares == pool.balanceOf(lp) and view.lp_assets == pool.convertToAssets(view.lp_shares)
    assert view.request.state == "cooling" and view.request.redeemable == 0
    assert view.request.unlock_at == receipt.timestamp + COOLDOWN
    assert abs(float(view.price) - 1.05) <= 2e-6  # virtual shares take a hair
    mine_at(receipt.timestamp + COOLDOWN)
    assert pool_view(pool, lp).request.state == "open"
    # a past block
    old = pool_view(pool, lp, block_id=receipt.block_number)
    assert old.total_assets == usd(1000) and old.request.state == "cooling"


def test_trailing_apy(pool, token, settler, lp, deployer, usd):
    pool.set_backstop_income_share(0, sender=deployer)
    deposit(token, pool, lp, usd(1000))
    start = chain.blocks.head.number
    t0 = income(token, pool, settler, usd(10)).timestamp
    mine_at(t0 + DAY)
    mine_at(t0 + 2 * DAY)
    apy_blocks = trailing_apy(pool, blocks=chain.blocks.head.number - start)
    # 1% over ~2 days, compounded over a year
    elapsed = chain.blocks.head.timestamp - chain.blocks[start].timestamp
    expected = 1.01 ** (365 * DAY / elapsed) - 1
    assert abs(apy_blocks - expected) / expected < 1e-3
    apy_seconds = trailing_apy(pool, seconds=DAY)  # the last day: fully vested, flat
    assert apy_seconds == 0.0
    pool.cover(usd(100), sender=settler)
    assert trailing_apy(pool, seconds=DAY) < 0
