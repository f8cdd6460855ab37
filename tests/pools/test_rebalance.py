"""InsurancePool.rebalance: surplus above target (only unvested income leaves, split between the
backstop and the treasury), top-up below the floor (bad debt only, within the member's and the
global draw caps), no-op inside the band, all of a segment's fees to a pool below its floor,
the Stress event on each crossing of the floor, and the setters' bad input.

Every flow is checked to the wei on the token balances of the pool, the backstop, the treasury
and the vault (`ledger`): what one of them lost, another got. Expected amounts are re-derived
from the contract's formulas (BackstopPool._room, InsurancePool.rebalance) on values read
on chain, never typed in by hand.
"""

import ape
import pytest

from backstop.core.config import ZERO_ADDRESS
from backstop.core.units import wad
from backstop.client.actors import trade
from pool_helpers import (DAY, MISSING_ROLE, VESTING, deposit, draw_room as room, events, income, mine_at,
                          next_tx_at, now)

BPS = 10_000


@pytest.fixture
def book(ledger, token, pool, alts_pool, backstop, treasury, settler):
    """The four holders every rebalancing flow can reach (the vault is the `settler` here)."""
    return ledger(token, pool=pool, alts=alts_pool, backstop=backstop, treasury=treasury, vault=settler)




def surplus_out(pool) -> int:
    """What rebalance sends out now: min(managed - target, unvested income)."""
    managed, target = int(pool.managed_assets()), int(pool.target_size())
    if target == 0 or managed <= target:
        return 0
    return min(managed - target, int(pool.unvested_income()))


def split(pool, out: int) -> tuple[int, int]:
    """(to backstop, to treasury) of a surplus `out`, as rebalance splits it."""
    if pool.treasury() == ZERO_ADDRESS:
        return out, 0
    to_backstop = out * int(pool.surplus_backstop_bps()) // BPS
    return to_backstop, out - to_backstop


def pool_price(pool):
    return int(pool.totalAssets()), int(pool.assets_per_share())


def above_target(token, pool, settler, lp, deployer, usd, target=1100, income_usd=300):
    """lp deposits 1,000, the target is `target`, and `income_usd` of income arrives (10% of it
    goes straight to the backstop, the rest vests in the pool over a day)."""
    deposit(token, pool, lp, usd(1000))
    pool.set_target_size(usd(target), sender=deployer)
    income(token, pool, settler, usd(income_usd))


# ---------------------------------------------------------------- surplus


@pytest.mark.parametrize("bps", [0, 2500, 5000, 10_000])
def test_surplus_split_between_backstop_and_treasury(bps, book, token, pool, backstop, settler, lp, deployer,
                                                     treasury, usd):
    above_target(token, pool, settler, lp, deployer, usd)
    pool.set_surplus_routing(treasury, bps, sender=deployer)
    mine_at(now() + VESTING // 4)
    out = surplus_out(pool)
    assert out == int(pool.managed_assets()) - usd(1100)  # the surplus is below the unvested income here
    to_backstop, to_treasury = split(pool, out)
    price = pool_price(pool)
    backstop_managed = int(backstop.managed_assets())
    book.reset()
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == out
    [log] = events(receipt, pool, "Rebalanced")
    assert (log.to_backstop, log.to_treasury, log.from_backstop) == (to_backstop, to_treasury, 0)
    assert log.assets == int(pool.managed_assets()) == usd(1100)
    income_logs = events(receipt, backstop, "BackstopIncome")
    if to_backstop:
        assert [(i.pool, i.amount) for i in income_logs] == [(pool.address, to_backstop)]
    else:
        assert income_logs == []  # nothing to forward: the backstop is not called
    book.moved(pool=-out, backstop=to_backstop, treasury=to_treasury)
    # the surplus was income the LPs had not earned yet: the exit price does not move
    assert pool_price(pool) == price
    assert int(backstop.managed_assets()) == backstop_managed + to_backstop


def test_zero_treasury_sends_the_whole_surplus_to_the_backstop(book, token, pool, backstop, settler, lp, deployer, usd):
    above_target(token, pool, settler, lp, deployer, usd)
    pool.set_surplus_routing(ZERO_ADDRESS, 3000, sender=deployer)
    mine_at(now() + VESTING // 2)
    out = surplus_out(pool)
    assert split(pool, out) == (out, 0)
    book.reset()
    receipt = pool.rebalance(sender=lp)
    [log] = events(receipt, pool, "Rebalanced")
    assert (log.to_backstop, log.to_treasury) == (out, 0)
    book.moved(pool=-out, backstop=out)


def test_surplus_is_capped_at_the_unvested_income(book, token, pool, backstop, settler, lp, deployer, treasury, usd):
    """Target 500 on a pool of 1,000 + 270 vesting: half a day in, only the unvested half of the
    income may leave, never the LPs' vested assets; once all of it has vested nothing leaves."""
    above_target(token, pool, settler, lp, deployer, usd, target=500)
    pool.set_surplus_routing(treasury, 5000, sender=deployer)
    mine_at(now() + VESTING // 2)
    unvested = int(pool.unvested_income())
    assert 0 < unvested < int(pool.managed_assets()) - usd(500)
    assert surplus_out(pool) == unvested
    price = pool_price(pool)
    book.reset()
    receipt = pool.rebalance(sender=lp)
    to_backstop, to_treasury = split(pool, unvested)
    book.moved(pool=-unvested, backstop=to_backstop, treasury=to_treasury)
    assert receipt.return_value == unvested
    assert pool_price(pool) == price
    assert int(pool.unvested_income()) == 0 and int(pool.managed_assets()) == int(pool.totalAssets())
    # still above target, but with nothing unvested the pool keeps its (vested) assets
    assert int(pool.surplus()) > 0
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == 0 and events(receipt, pool, "Rebalanced") == []
    book.moved()
    assert pool_price(pool) == price


def test_assets_per_share_never_fall_through_rebalancing(book, token, pool, backstop, settler, lp, lp2, deployer,
                                                          treasury, usd):
    """Income, rebalance, deposits and more income over several days, rebalancing at every step:
    neither totalAssets nor assets per share ever fall in a rebalance, and every call conserves
    the token to the wei."""
    pool.set_surplus_routing(treasury, 4000, sender=deployer)
    deposit(token, pool, lp, usd(1000))
    pool.set_target_size(usd(1050), sender=deployer)
    t = now()
    for k, (amount, lag) in enumerate([(200, 3600), (50, 600), (400, 7 * 3600), (5, 1), (120, DAY)]):
        income(token, pool, settler, usd(amount))
        if k == 2:
            deposit(token, pool, lp2, usd(300))
        t += lag
        mine_at(t)
        out = surplus_out(pool)
        price = pool_price(pool)
        book.reset()
        moved = pool.rebalance(sender=lp2).return_value
        assert moved == out
        to_backstop, to_treasury = split(pool, out)
        book.moved(pool=-out, backstop=to_backstop, treasury=to_treasury)
        assert pool_price(pool) == price
        assert int(pool.managed_assets()) >= int(pool.totalAssets())


def test_no_op_inside_the_band(book, token, pool, backstop, settler, lp, deployer, usd):
    deposit(token, backstop, lp, usd(1000))
    deposit(token, pool, lp, usd(1000))
    pool.set_target_size(usd(2000), sender=deployer)
    pool.set_floor_size(usd(500), sender=deployer)
    income(token, pool, settler, usd(100))  # unvested income, but the pool is under its target
    state = (pool_price(pool), int(pool.managed_assets()), pool.stressed(), backstop.draw_state(pool))
    book.reset()
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == 0
    assert events(receipt, pool, "Rebalanced") == [] and events(receipt, pool, "Stress") == []
    assert events(receipt, backstop, "TopUp") == [] and events(receipt, backstop, "BackstopIncome") == []
    book.moved()
    assert (pool_price(pool), int(pool.managed_assets()), pool.stressed(), backstop.draw_state(pool)) == state


def test_no_target_and_no_floor_is_a_no_op(book, token, pool, backstop, settler, lp, usd):
    deposit(token, backstop, lp, usd(1000))
    deposit(token, pool, lp, usd(1000))
    income(token, pool, settler, usd(100))
    assert (int(pool.target_size()), int(pool.floor_size())) == (0, 0)
    book.reset()
    assert pool.rebalance(sender=lp).return_value == 0
    book.moved()


# ---------------------------------------------------------------- top-up below the floor


def crash(token, pool, backstop, settler, lp, deployer, usd, pool_usd=1000, backstop_usd=10_000, floor=1000, loss=300):
    """A pool of `pool_usd` with floor `floor` pays `loss` of bad debt itself (the backstop,
    `backstop_usd`, is not drawn)."""
    deposit(token, backstop, lp, usd(backstop_usd))
    deposit(token, pool, lp, usd(pool_usd))
    pool.set_floor_size(usd(floor), sender=deployer)
    receipt = pool.cover(usd(loss), sender=settler)
    [cover] = events(receipt, pool, "Cover")
    assert (cover.paid_by_pool, cover.paid_by_backstop) == (usd(loss), 0)


def test_top_up_refills_the_bad_debt_paid(book, token, pool, backstop, settler, lp, deployer, usd):
    crash(token, pool, backstop, settler, lp, deployer, usd)
    # cover leaves the stress flag alone (the liquidation path pays for no extra slot): the live
    # view sees the pool below its floor, the flag waits for the keeper's rebalance
    assert pool.below_floor() and not pool.stressed()
    assert int(pool.refillable()) == usd(300)
    wanted = min(int(pool.floor_size()) - int(pool.managed_assets()), int(pool.refillable()))
    assert room(backstop, pool) >= wanted  # neither cap binds here
    price, backstop_price = pool_price(pool), int(backstop.assets_per_share())
    book.reset()
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert (top_up.member, top_up.requested, top_up.paid) == (pool.address, wanted, wanted)
    [log] = events(receipt, pool, "Rebalanced")
    assert (log.to_backstop, log.to_treasury, log.from_backstop, log.assets) == (0, 0, wanted, usd(1000))
    assert events(receipt, backstop, "Draw") == []
    book.moved(pool=wanted, backstop=-wanted)
    assert int(pool.refillable()) == 0 and not pool.below_floor()
    assert events(receipt, pool, "Stress") == [] and not pool.stressed()  # refilled before any refresh saw it
    # the refill vests in the pool like income; the backstop's LPs bear it at once
    assert pool_price(pool) == price and int(pool.unvested_income()) == wanted
    assert int(backstop.assets_per_share()) < backstop_price
    # a top-up is a draw: it counts in the member's and the global window
    assert backstop.draw_state(pool)[2] == wanted == backstop.global_draw_state()[2]
    mine_at(now() + VESTING)
    assert int(pool.totalAssets()) == usd(1000)


def test_withdrawals_are_never_refilled(book, token, pool, backstop, settler, lp, lp2, deployer, usd):
    """lp2 redeems its 400 out of a 1,000 pool with floor 1,000: the pool is below its floor
    but has paid no bad debt, so the backstop pays nothing to the LP who stays."""
    deposit(token, backstop, lp, usd(10_000))
    deposit(token, pool, lp, usd(600))
    deposit(token, pool, lp2, usd(400))
    pool.set_floor_size(usd(1000), sender=deployer)
    shares = int(pool.balanceOf(lp2))
    unlock, _ = pool.request_redeem(shares, sender=lp2).return_value
    next_tx_at(unlock)
    pool.redeem(shares, lp2, lp2, sender=lp2)
    assert pool.below_floor() and int(pool.refillable()) == 0
    book.reset()
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == 0 and events(receipt, backstop, "TopUp") == []
    book.moved()
    assert backstop.draw_state(pool)[2] == 0


def test_loss_then_withdrawal_refills_only_the_loss(book, token, pool, backstop, settler, lp, lp2, deployer, usd):
    deposit(token, backstop, lp, usd(10_000))
    deposit(token, pool, lp, usd(600))
    deposit(token, pool, lp2, usd(400))
    pool.set_floor_size(usd(1000), sender=deployer)
    pool.cover(usd(100), sender=settler)
    shares = int(pool.balanceOf(lp2))
    unlock, _ = pool.request_redeem(shares, sender=lp2).return_value
    next_tx_at(unlock)
    pool.redeem(shares, lp2, lp2, sender=lp2)
    short = int(pool.floor_size()) - int(pool.managed_assets())
    assert short > usd(100) == int(pool.refillable())
    book.reset()
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert (top_up.requested, top_up.paid) == (usd(100), usd(100))
    book.moved(pool=usd(100), backstop=-usd(100))
    assert pool.below_floor() and pool.stressed()  # still below: the withdrawal is not refilled
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == 0 and events(receipt, backstop, "TopUp") == []
    book.moved()


def test_top_up_limited_by_the_member_cap(book, token, pool, backstop, settler, lp, deployer, usd):
    """Backstop 1,000, member cap 25%: a refill of 600 gets 250 now, nothing more in the same
    window, and 25% of what the backstop holds after the window rolls over."""
    crash(token, pool, backstop, settler, lp, deployer, usd, backstop_usd=1000, loss=600)
    assert int(backstop.member_cap_bps(pool)) == 2500
    cap = room(backstop, pool)
    assert cap == usd(1000) * 2500 // BPS
    book.reset()
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert (top_up.requested, top_up.paid) == (usd(600), cap)
    book.moved(pool=cap, backstop=-cap)
    assert int(pool.refillable()) == usd(600) - cap and pool.stressed()
    # still below the floor after the refill: this rebalance is the refresh that flags it
    assert [s.stressed for s in events(receipt, pool, "Stress")] == [True]
    start = receipt.timestamp
    # the same window: the cap is spent, the call moves nothing (TopUp reports the 0)
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert top_up.paid == 0 and receipt.return_value == 0 and events(receipt, pool, "Rebalanced") == []
    book.moved()
    next_tx_at(start + DAY)
    wanted = min(int(pool.floor_size()) - int(pool.managed_assets()), int(pool.refillable()))
    fresh = int(backstop.managed_assets()) * 2500 // BPS  # a new window: nothing drawn in it yet
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert (top_up.requested, top_up.paid) == (wanted, min(wanted, fresh))
    book.moved(pool=min(wanted, fresh), backstop=-min(wanted, fresh))


def test_top_up_limited_by_the_global_cap(book, token, pool, alts_pool, backstop, settler, lp, deployer, usd):
    """Both members may draw 100% of the backstop, all members together 30%: alts draws 200 for a
    deficit, then majors' refill gets only the 100 left under the global cap."""
    crash(token, pool, backstop, settler, lp, deployer, usd, backstop_usd=1000, loss=600)
    backstop.set_member(pool, BPS, sender=deployer)
    backstop.set_member(alts_pool, BPS, sender=deployer)
    backstop.set_global_draw_cap(3000, sender=deployer)
    book.reset()
    receipt = alts_pool.cover(usd(200), sender=settler)  # the alts pool is empty: all from the backstop
    [draw] = events(receipt, backstop, "Draw")
    assert (draw.member, draw.paid) == (alts_pool.address, usd(200))
    book.moved(backstop=-usd(200), vault=usd(200))
    left = room(backstop, pool)
    assert left == (usd(800) + usd(200)) * 3000 // BPS - usd(200) == usd(100)
    receipt = pool.rebalance(sender=lp)
    [top_up] = events(receipt, backstop, "TopUp")
    assert (top_up.requested, top_up.paid) == (usd(600), left)
    book.moved(pool=left, backstop=-left)
    assert backstop.global_draw_state()[2] == usd(300)
    assert room(backstop, pool) == 0 == int(backstop.draw_capacity(alts_pool))


def test_no_top_up_for_a_pool_that_is_not_a_member(book, token, pool, backstop, settler, lp, deployer, usd):
    crash(token, pool, backstop, settler, lp, deployer, usd)
    backstop.set_member(pool, 0, sender=deployer)
    book.reset()
    receipt = pool.rebalance(sender=lp)
    assert receipt.return_value == 0 and events(receipt, backstop, "TopUp") == []
    book.moved()
    assert int(pool.refillable()) == usd(300)  # kept for when it is a member again


def test_top_up_and_cover_draws_share_the_window(book, token, pool, backstop, settler, lp, deployer, usd):
    """A top-up spends the same member window as a cover's draw: after a 200 refill on a 1,000
    backstop only 50 of the 250 cap is left for the next deficit."""
    crash(token, pool, backstop, settler, lp, deployer, usd, backstop_usd=1000, loss=200)
    pool.rebalance(sender=lp)
    assert room(backstop, pool) == usd(50) == int(backstop.draw_capacity(pool))
    book.reset()
    receipt = pool.cover(usd(2000), sender=settler)
    [cover] = events(receipt, pool, "Cover")
    assert cover.paid_by_backstop == usd(50)
    book.moved(pool=-cover.paid_by_pool, backstop=-usd(50), vault=cover.paid_by_pool + usd(50))


def test_anyone_may_rebalance_and_nothing_reaches_the_caller(ledger, token, pool, backstop, settler, lp,
                                                            attacker, deployer, treasury, usd):
    above_target(token, pool, settler, lp, deployer, usd)
    pool.set_surplus_routing(treasury, 5000, sender=deployer)
    mine_at(now() + 3600)
    out = surplus_out(pool)
    to_backstop, to_treasury = split(pool, out)
    watch = ledger(token, pool=pool, backstop=backstop, treasury=treasury, attacker=attacker)
    assert pool.rebalance(sender=attacker).return_value == out
    watch.moved(pool=-out, backstop=to_backstop, treasury=to_treasury)


# ---------------------------------------------------------------- the stress signal


def stress_flips(receipt, pool):
    return [(s.stressed, s.assets, s.floor, s.target) for s in events(receipt, pool, "Stress")]


def test_stress_event_on_each_crossing_and_never_repeated(token, pool, backstop, settler, lp, lp2, deployer, usd):
    deposit(token, backstop, lp, usd(10_000))
    pool.set_target_size(usd(5000), sender=deployer)
    receipt = pool.set_floor_size(usd(1000), sender=deployer)
    # an empty pool with a floor is below it: the setter refreshes the flag
    assert stress_flips(receipt, pool) == [(True, 0, usd(1000), usd(5000))] and pool.stressed()
    receipt = deposit(token, pool, lp, usd(1500))
    assert stress_flips(receipt, pool) == [(False, usd(1500), usd(1000), usd(5000))] and not pool.stressed()
    receipt = income(token, pool, settler, usd(10))  # above the floor: no crossing, no event
    assert stress_flips(receipt, pool) == []
    managed = int(pool.managed_assets())
    receipt = pool.cover(managed - usd(900), sender=settler)  # down through the floor
    # cover does not refresh the flag: the next refresh (income, deposit, mint, rebalance) does
    assert stress_flips(receipt, pool) == [] and pool.below_floor() and not pool.stressed()
    receipt = income(token, pool, settler, usd(5))
    assert stress_flips(receipt, pool) == [(True, int(pool.managed_assets()), usd(1000), usd(5000))]
    assert pool.stressed()
    for again in (pool.cover(usd(50), sender=settler), income(token, pool, settler, usd(5)),
                  deposit(token, pool, lp2, usd(10))):
        assert stress_flips(again, pool) == [] and pool.stressed()  # still below: not repeated
    short = usd(1000) - int(pool.managed_assets())
    assert 0 < short < int(pool.refillable())
    receipt = pool.rebalance(sender=lp)  # the refill lifts it back to the floor: up
    [top_up] = events(receipt, backstop, "TopUp")
    assert top_up.paid == short and int(pool.managed_assets()) == usd(1000)
    assert stress_flips(receipt, pool) == [(False, usd(1000), usd(1000), usd(5000))] and not pool.stressed()
    receipt = pool.rebalance(sender=lp)
    assert stress_flips(receipt, pool) == []
    # raising the floor above the pool is a crossing too
    receipt = pool.set_floor_size(usd(2000), sender=deployer)
    assert stress_flips(receipt, pool) == [(True, usd(1000), usd(2000), usd(5000))]
    receipt = pool.set_floor_size(usd(2000), sender=deployer)
    assert stress_flips(receipt, pool) == []


def test_a_withdrawal_below_the_floor_flips_the_flag_at_the_next_refresh(token, pool, backstop, settler, lp, deployer,
                                                                          usd):
    deposit(token, pool, lp, usd(1000))
    pool.set_floor_size(usd(800), sender=deployer)
    shares = int(pool.balanceOf(lp)) // 2
    unlock, _ = pool.request_redeem(shares, sender=lp).return_value
    next_tx_at(unlock)
    receipt = pool.redeem(shares, lp, lp, sender=lp)
    assert stress_flips(receipt, pool) == []
    assert pool.below_floor() and not pool.stressed()  # the live view sees it, the flag waits
    receipt = pool.rebalance(sender=lp)
    assert stress_flips(receipt, pool) == [(True, int(pool.managed_assets()), usd(800), 0)] and pool.stressed()


# ---------------------------------------------------------------- fees below the floor (real vault)


def test_all_fees_to_a_pool_below_its_floor_then_the_split_resumes(system, ledger, funded, maker, trader, lp, deployer,
                                                                    eth, majors, usd):
    """Below its floor the majors pool gets 100% of the segment's swept fees and forwards none to
    the backstop; once a deposit restores it, the vault's split and the backstop share resume."""
    vault, pool, backstop = system.vault, system.pools["majors"], system.backstop
    token = system.token
    watch = ledger(token, vault=vault, pool=pool, backstop=backstop, treasury=system.treasury)
    pool.set_floor_size(usd(1000), sender=deployer)
    assert pool.below_floor()
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    fees = int(system.lens.accrued_fees(eth.id))
    assert fees > 0
    assert int(pool.pending_income()) == fees
    watch.reset()
    receipt = vault.sweep_fees(majors, sender=lp)
    [swept] = receipt.decode_logs(vault.FeesSwept)
    assert (swept.to_pool, swept.to_treasury) == (fees, 0)
    [notified] = receipt.decode_logs(pool.IncomeNotified)
    assert (notified.amount, notified.to_backstop) == (fees, 0)
    watch.moved(vault=-fees, pool=fees)
    # a deposit restores the pool (its own sweep finds nothing accrued)
    token.mint(lp, usd(2000), sender=lp)
    token.approve(pool, usd(2000), sender=lp)
    receipt = pool.deposit(usd(2000), lp, sender=lp)
    assert [s.stressed for s in receipt.decode_logs(pool.Stress)] == [False] and not pool.below_floor()
    watch.reset()
    trade(system, maker, trader, eth.id, -wad(10), wad(3000))
    fees = int(system.lens.accrued_fees(eth.id))
    to_pool = fees * int(vault.pool_fee_share_bps()) // BPS
    to_backstop = to_pool * int(pool.backstop_income_share_bps()) // BPS
    assert 0 < to_backstop < to_pool < fees
    assert int(pool.pending_income()) == to_pool - to_backstop
    receipt = vault.sweep_fees(majors, sender=lp)
    [swept] = receipt.decode_logs(vault.FeesSwept)
    assert (swept.to_pool, swept.to_treasury) == (to_pool, fees - to_pool)
    [notified] = receipt.decode_logs(pool.IncomeNotified)
    assert (notified.amount, notified.to_backstop) == (to_pool, to_backstop)
    watch.moved(vault=-fees, pool=to_pool - to_backstop, backstop=to_backstop, treasury=fees - to_pool)


# ---------------------------------------------------------------- bad input and roles


def test_floor_above_target_is_refused_both_ways(pool, deployer, usd):
    pool.set_target_size(usd(1000), sender=deployer)
    with ape.reverts("pool: floor > target"):
        pool.set_floor_size(usd(1000) + 1, sender=deployer)
    pool.set_floor_size(usd(1000), sender=deployer)  # floor == target is a band of one point
    with ape.reverts("pool: floor > target"):
        pool.set_target_size(usd(1000) - 1, sender=deployer)
    pool.set_target_size(0, sender=deployer)  # no target: any floor
    pool.set_floor_size(usd(10**9), sender=deployer)
    assert int(pool.floor_size()) == usd(10**9)
    pool.set_floor_size(2**128 - 1, sender=deployer)  # the floor's 128-bit field
    with ape.reverts("pool: floor too large"):
        pool.set_floor_size(2**128, sender=deployer)


def test_surplus_routing_bps_above_10000_is_refused(pool, deployer, treasury):
    with ape.reverts("pool: bps > 10000"):
        pool.set_surplus_routing(treasury, BPS + 1, sender=deployer)
    receipt = pool.set_surplus_routing(treasury, BPS, sender=deployer)
    [param] = receipt.decode_logs(pool.ParamSet)
    assert (param.param, param.value) == ("surplus_backstop_bps", BPS)
    assert (pool.treasury(), int(pool.surplus_backstop_bps())) == (treasury.address, BPS)


def test_band_setters_need_the_risk_admin(pool, attacker, treasury, usd):
    with ape.reverts(MISSING_ROLE):
        pool.set_floor_size(usd(1), sender=attacker)
    with ape.reverts(MISSING_ROLE):
        pool.set_target_size(usd(1), sender=attacker)
    with ape.reverts(MISSING_ROLE):
        pool.set_surplus_routing(attacker, 0, sender=attacker)


def test_only_members_top_up(backstop, token, lp, attacker, usd):
    deposit(token, backstop, lp, usd(1000))
    with ape.reverts("backstop: not a member"):
        backstop.top_up(usd(10), sender=attacker)
