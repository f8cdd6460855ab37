"""BackstopPool members by address: a cap per member and a global cap across members per window,
removal, non-members, MAX_MEMBERS, dust draws; segment isolation inside one deployment; and the
network of two deployments on one backstop: a crash in deployment B is covered by B's pools and
then by the shared backstop within B's member cap, while deployment A's pools and accounts stay
exactly as they were.

Every flow is checked to the wei on token balances (`ledger`); expected draws are re-derived
from BackstopPool._room on values read on chain.
"""

import ape
import pytest

from backstop.client.actors import fund, set_price, trade
from backstop.client.deploy import deploy_system
from backstop.core.config import ZERO_ADDRESS, SystemConfig
from backstop.core.units import wad
from pool_helpers import DAY, MISSING_ROLE, deposit, draw_room as room, events, next_tx_at

BPS = 10_000




def cover(pool, backstop, settler, amount):
    """A deficit of `amount` for `pool`: (Cover, [Draw]) events."""
    receipt = pool.cover(amount, sender=settler)
    [log] = events(receipt, pool, "Cover")
    return log, events(receipt, backstop, "Draw")


@pytest.fixture
def book(ledger, token, pool, alts_pool, backstop, settler):
    return ledger(token, pool=pool, alts=alts_pool, backstop=backstop, vault=settler)


# ---------------------------------------------------------------- caps


def test_each_member_draws_within_its_own_cap(book, token, pool, alts_pool, backstop, settler, lp, deployer, usd):
    deposit(token, backstop, lp, usd(1000))
    receipt = backstop.set_member(pool, 1000, sender=deployer)
    [log] = events(receipt, backstop, "MemberSet")
    assert (log.pool, log.cap_bps) == (pool.address, 1000)
    backstop.set_member(alts_pool, 3000, sender=deployer)
    backstop.set_global_draw_cap(BPS, sender=deployer)
    assert [int(backstop.member_cap_bps(p)) for p in (pool, alts_pool)] == [1000, 3000]
    for member, bps in ((pool, 1000), (alts_pool, 3000)):
        cap = room(backstop, member)
        assert cap == int(backstop.draw_capacity(member))
        assert cap == int(backstop.managed_assets()) * bps // BPS  # nothing drawn by this member yet
        book.reset()
        log, [draw] = cover(member, backstop, settler, usd(5000))
        assert (draw.member, draw.requested, draw.paid, draw.recipient) == (member.address, usd(5000), cap, settler.address)
        assert log.paid_by_backstop == cap and log.unpaid == usd(5000) - cap
        book.moved(backstop=-cap, vault=cap)
        assert int(backstop.draw_capacity(member)) == 0
        assert backstop.draw_state(member)[2] == cap


def test_global_cap_bounds_all_members_together(book, token, pool, alts_pool, backstop, settler, lp, deployer, usd):
    """Member caps 40%, global 50% of a 1,000 backstop: majors draws its 400, alts only the 100
    left under the global cap (not its own 40% of 600)."""
    deposit(token, backstop, lp, usd(1000))
    backstop.set_member(pool, 4000, sender=deployer)
    backstop.set_member(alts_pool, 4000, sender=deployer)
    _, [first] = cover(pool, backstop, settler, usd(1000))
    assert first.paid == usd(400)
    assert room(backstop, alts_pool) == usd(100) < (usd(600) * 4000 // BPS)
    book.reset()
    _, [second] = cover(alts_pool, backstop, settler, usd(1000))
    assert (second.member, second.paid) == (alts_pool.address, usd(100))
    book.moved(backstop=-usd(100), vault=usd(100))
    assert backstop.global_draw_state()[1:] == (usd(500), usd(500))
    assert int(backstop.draw_capacity(pool)) == int(backstop.draw_capacity(alts_pool)) == 0


def test_dust_draw_cannot_pin_a_cap(book, token, pool, backstop, settler, lp, lp2, usd):
    """A 1-wei draw opens majors' window on a 1,000 backstop; the backstop grows to 5,000 in
    that window: the next draw gets 25% of the grown backstop, not of the 1,000."""
    deposit(token, backstop, lp, usd(1000))
    _, [dust] = cover(pool, backstop, settler, 1)
    assert dust.paid == 1
    deposit(token, backstop, lp2, usd(4000) + 1)
    assert backstop.draw_state(pool)[1:] == (usd(5000) // 4, 1)
    assert room(backstop, pool) == int(backstop.draw_capacity(pool)) == usd(5000) // 4 - 1
    book.reset()
    _, [big] = cover(pool, backstop, settler, usd(3000))
    assert big.paid == usd(5000) // 4 - 1
    book.moved(backstop=-big.paid, vault=big.paid)
    assert backstop.draw_state(pool)[1:] == (usd(5000) // 4, usd(5000) // 4)


def test_cap_does_not_shrink_with_the_windows_own_draws(book, token, pool, backstop, settler, lp, usd):
    """Three draws of 100 in one window on a 1,000 backstop: each is capped by 25% of the 1,000
    the window started with, less what the window drew, not by 25% of what is left."""
    deposit(token, backstop, lp, usd(1000))
    cap = usd(1000) * int(backstop.member_cap_bps(pool)) // BPS
    drawn = 0
    for _ in range(3):
        assert room(backstop, pool) == cap - drawn
        book.reset()
        _, [draw] = cover(pool, backstop, settler, usd(100))
        assert draw.paid == min(usd(100), cap - drawn)
        book.moved(backstop=-draw.paid, vault=draw.paid)
        drawn += draw.paid
    assert drawn == cap < usd(300)


def test_member_window_rolls_over(token, pool, backstop, settler, lp, usd):
    deposit(token, backstop, lp, usd(1000))
    cover(pool, backstop, settler, usd(1000))
    start = int(backstop.draw_state(pool)[0])
    next_tx_at(start + DAY - 1)
    assert cover(pool, backstop, settler, usd(1000))[1][0].paid == 0
    next_tx_at(start + DAY)
    fresh = int(backstop.managed_assets()) * int(backstop.member_cap_bps(pool)) // BPS  # a new window
    assert cover(pool, backstop, settler, usd(1000))[1][0].paid == fresh
    assert int(backstop.draw_state(pool)[0]) == start + DAY


# ---------------------------------------------------------------- membership


def test_removal_stops_draws(book, token, pool, backstop, settler, lp, other, deployer, usd):
    """An EOA registered as a member draws directly; once removed it cannot, and a removed pool's
    deficit goes unpaid past its own assets (no Draw at all)."""
    deposit(token, backstop, lp, usd(1000))
    count = int(backstop.member_count())
    backstop.set_member(other, 2500, sender=deployer)
    assert int(backstop.member_count()) == count + 1
    receipt = backstop.draw(usd(10), other, sender=other)
    assert receipt.return_value == usd(10)
    backstop.set_member(other, 0, sender=deployer)
    assert int(backstop.member_count()) == count and int(backstop.draw_capacity(other)) == 0
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(10), other, sender=other)
    with ape.reverts("backstop: not a member"):
        backstop.top_up(usd(10), sender=other)
    # its window keeps what it drew: a member re-added in the same window starts from it
    backstop.set_member(other, 2500, sender=deployer)
    assert backstop.draw_state(other)[2] == usd(10)
    backstop.set_member(pool, 0, sender=deployer)
    book.reset()
    log, draws = cover(pool, backstop, settler, usd(50))
    assert draws == [] and (log.paid_by_pool, log.paid_by_backstop, log.unpaid) == (0, 0, usd(50))
    book.moved()


def test_non_members_cannot_draw_or_top_up(book, token, backstop, settler, lp, attacker, deployer, usd):
    deposit(token, backstop, lp, usd(1000))
    book.reset()
    for caller in (attacker, settler, deployer):  # not even the vault or the admin
        with ape.reverts("backstop: not a member"):
            backstop.draw(usd(10), caller, sender=caller)
        with ape.reverts("backstop: not a member"):
            backstop.top_up(usd(10), sender=caller)
    assert int(backstop.draw_capacity(attacker)) == 0
    book.moved()


def test_draw_input_checks(token, backstop, lp, other, deployer, usd):
    deposit(token, backstop, lp, usd(1000))
    backstop.set_member(other, 2500, sender=deployer)
    with ape.reverts("backstop: zero recipient"):
        backstop.draw(usd(10), ZERO_ADDRESS, sender=other)
    with ape.reverts("backstop: zero amount"):
        backstop.draw(0, other, sender=other)
    with ape.reverts("backstop: zero amount"):
        backstop.top_up(0, sender=other)


def test_set_member_checks(backstop, attacker, deployer, pool):
    with ape.reverts(MISSING_ROLE):
        backstop.set_member(attacker, 2500, sender=attacker)
    with ape.reverts("backstop: zero pool"):
        backstop.set_member(ZERO_ADDRESS, 2500, sender=deployer)
    with ape.reverts("backstop: bps > 10000"):
        backstop.set_member(pool, BPS + 1, sender=deployer)


def test_at_most_max_members(backstop, deployer, pool):
    limit = int(backstop.MAX_MEMBERS())
    assert limit == 64
    extra = [f"0x{k:040x}" for k in range(1, limit - int(backstop.member_count()) + 1)]
    for member in extra:
        backstop.set_member(member, 100, sender=deployer)
    assert int(backstop.member_count()) == limit
    with ape.reverts("backstop: too many members"):
        backstop.set_member(f"0x{limit + 1000:040x}", 100, sender=deployer)
    backstop.set_member(pool, 3000, sender=deployer)  # an existing member's cap still changes
    assert int(backstop.member_count()) == limit
    backstop.set_member(extra[0], 0, sender=deployer)  # a removal frees a slot
    backstop.set_member(f"0x{limit + 1000:040x}", 100, sender=deployer)
    assert int(backstop.member_count()) == limit
    backstop.set_member(extra[1], 0, sender=deployer)
    backstop.set_member(extra[1], 0, sender=deployer)  # removing a non-member changes no count
    assert int(backstop.member_count()) == limit - 1


# ---------------------------------------------------------------- segment isolation, one deployment


def test_segment_isolation(book, token, pool, alts_pool, backstop, settler, lp, lp2, usd):
    deposit(token, pool, lp, usd(100))
    deposit(token, alts_pool, lp2, usd(400))
    deposit(token, backstop, lp, usd(1000))
    alts_before = (int(alts_pool.managed_assets()), int(alts_pool.totalAssets()), int(alts_pool.assets_per_share()))
    cap = room(backstop, pool)
    book.reset()
    log, [draw] = cover(pool, backstop, settler, usd(10_000))
    assert (log.paid_by_pool, log.paid_by_backstop, draw.member) == (usd(100), cap, pool.address)
    book.moved(pool=-usd(100), backstop=-cap, vault=usd(100) + cap)
    assert (int(alts_pool.managed_assets()), int(alts_pool.totalAssets()), int(alts_pool.assets_per_share())) == alts_before
    assert backstop.draw_state(alts_pool)[2] == 0


# ---------------------------------------------------------------- two deployments, one backstop


@pytest.fixture(scope="module")
def network(system, deployer, treasury):
    """Deployment B: its own vault, engine, oracle, markets and segment pools, joining deployment
    A's (the session system's) backstop and liquidator of last resort."""
    other = deploy_system(deployer, SystemConfig(treasury=treasury.address), backstop=system.backstop)
    return system, other


def _accounts_state(system, owners):
    vault = system.vault
    return {
        "collateral": [int(vault.collateral(o, s)) for o in owners for s in system.segments.values()],
        "positions": [tuple(int(x) for x in vault.position(o, m.id)) for o in owners for m in system.markets.values()],
        "vault": int(system.token.balanceOf(vault)),
        "cash": [tuple(int(x) for x in system.lens.segment_cash(s)) for s in system.segments.values()],
    }


def _pools_state(system):
    token = system.token
    return {
        label: (int(p.managed_assets()), int(p.totalAssets()), int(p.assets_per_share()), int(p.totalSupply()),
                int(token.balanceOf(p)), int(p.refillable()), bool(p.stressed()),
                # the member's own window (start, drawn); its cap follows the shared backstop's size
                tuple(int(x) for x in system.backstop.draw_state(p))[::2])
        for label, p in system.pools.items()
    }


def _claims(system, owners) -> int:
    """What the vault owes (MarginVault docstring): collateral + accrued fees and penalties - entry."""
    vault, lens = system.vault, system.lens
    total = sum(int(vault.collateral(o, s)) for o in owners for s in system.segments.values())
    for m in system.markets.values():
        total += int(lens.accrued_fees(m.id)) + int(lens.accrued_penalties(m.id))
        total -= sum(int(vault.position(o, m.id)[1]) for o in owners)
    return total


def test_second_deployment_joins_the_shared_backstop(network):
    a, b = network
    assert b.backstop.address == a.backstop.address and b.token.address == a.token.address
    assert b.vault.address != a.vault.address
    backstop = a.backstop
    for p in [*a.pools.values(), *b.pools.values()]:
        assert int(backstop.member_cap_bps(p)) == 2500
        assert backstop.hasRole(backstop.INCOME_ROLE(), p)
    assert int(backstop.member_count()) == len(a.pools) + len(b.pools)
    assert b.liquidator.address == a.liquidator.address == b.engine.liquidator() == a.engine.liquidator()
    assert a.liquidator.hasRole(a.liquidator.TAKEOVER_ROLE(), b.engine)
    assert [b.vault.segment_pool(s) for s in b.segments.values()] == [b.pools[label].address for label in b.segments]


def test_crash_in_one_deployment_never_reaches_the_other(network, ledger, deployer, maker, trader, keeper, lp, lp2,
                                                        other, usd):
    """Both deployments trade ETH; A's pools hold LP money. In B the trader (4,000 collateral,
    10 ETH short at 3,000) is gapped to 3,600: equity -2,015, B's majors pool holds 500. The
    keeper closes the account; B's pool pays its 500 and the shared backstop B's member cap
    (25% of it), the rest is unpaid in B. A's pools, share prices, windows, accounts, cash and
    vault balance are identical before and after."""
    a, b = network
    backstop, token = a.backstop, a.token
    majors = a.segments["majors"]
    eth_a, eth_b = a.markets["ETH-PERP"].id, b.markets["ETH-PERP"].id
    # deployment A: LP money in both pools, an open book, accrued fees
    for label, amount in (("majors", 1000), ("alts", 500)):
        token.mint(lp, usd(amount), sender=lp)
        token.approve(a.pools[label], usd(amount), sender=lp)
        a.pools[label].deposit(usd(amount), lp, sender=lp)
    fund(a, maker, majors, usd(100_000))
    fund(a, trader, majors, usd(4000))
    trade(a, maker, trader, eth_a, wad(10), wad(3000))
    token.mint(lp2, usd(4000), sender=lp2)
    token.approve(backstop, usd(4000), sender=lp2)
    backstop.deposit(usd(4000), lp2, sender=lp2)
    # deployment B: the same roles, its own accounts
    pool_b = b.pools["majors"]
    token.mint(other, usd(500), sender=other)
    token.approve(pool_b, usd(500), sender=other)
    pool_b.deposit(usd(500), other, sender=other)
    fund(b, maker, majors, usd(100_000))
    fund(b, keeper, majors, usd(100_000))
    fund(b, trader, majors, usd(4000))
    trade(b, maker, trader, eth_b, wad(10), wad(3000))
    owners = [maker, trader, keeper, lp, lp2, other]
    a_accounts, a_pools = _accounts_state(a, owners), _pools_state(a)
    cap = room(backstop, pool_b)
    assert cap == int(backstop.managed_assets()) * 2500 // BPS
    set_price(b, "ETH-PERP", wad(3600), deployer)
    equity = int(b.vault.account_health(trader, majors).equity)
    assert equity == -usd(2015)
    watch = ledger(token, vault_a=a.vault, vault_b=b.vault, backstop=backstop, treasury=a.treasury,
                   **{f"a_{k}": p for k, p in a.pools.items()}, **{f"b_{k}": p for k, p in b.pools.items()})
    receipt = b.engine.liquidate(trader, eth_b, wad(10), sender=keeper)
    [liq] = receipt.decode_logs(b.engine.Liquidated)
    deficit = -equity + liq.keeper_fee
    [cov] = receipt.decode_logs(pool_b.Cover)
    assert (cov.requested, cov.paid_by_pool, cov.paid_by_backstop) == (deficit, usd(500), cap)
    assert cov.unpaid == deficit - usd(500) - cap > 0
    [draw] = receipt.decode_logs(backstop.Draw)
    assert (draw.member, draw.paid, draw.recipient) == (pool_b.address, cap, b.vault.address)
    watch.moved(b_majors=-usd(500), backstop=-cap, vault_b=usd(500) + cap)
    assert int(b.vault.collateral(trader, majors)) == -cov.unpaid
    assert int(token.balanceOf(b.vault)) == _claims(b, owners)
    # deployment A did not move, to the wei
    assert _accounts_state(a, owners) == a_accounts
    after = _pools_state(a)
    assert after == a_pools
    assert int(token.balanceOf(a.vault)) == _claims(a, owners)
    # the global window is shared: A's majors pool may still draw its own cap or the global rest
    assert int(backstop.draw_capacity(a.pools["majors"])) == room(backstop, a.pools["majors"])


def test_a_member_of_another_deployment_draws_only_for_itself(network, ledger, lp, usd):
    """B's alts pool cannot draw for anyone: draws are keyed by the calling member, and a member
    of one deployment cannot be made to pay the other's deficit (cover needs the vault's role)."""
    a, b = network
    backstop = a.backstop
    with ape.reverts():
        b.pools["alts"].cover(usd(1), sender=lp)
    with ape.reverts("backstop: not a member"):
        backstop.draw(usd(1), lp, sender=lp)
    assert backstop.draw_state(b.pools["alts"])[2] == 0
