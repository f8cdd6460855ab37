"""Bad debt: gap through the liquidation price, pool cover, ADL, auction end, isolation, races."""

import ape
import pytest

from backstop.client.actors import trade
from backstop.core.units import wad

# |winner's loss vs mark - deficit| and the bankrupt account's final collateral are within
# this many quote units: cost = floor(size x price), the mark value floor(size x mark) and
# the haircut/price roundings (each < 1 unit at these sizes).
ROUNDING = 2


@pytest.fixture
def everyone(accounts):
    return list(accounts[:10])


def _equity(kit, owner, segment) -> int:
    return int(kit.health(owner, segment).equity)


def test_gap_bankrupt_pool_pays_exact_deficit_and_winner_withdraws(
    short_eth, system, kit, engine, trader, maker, keeper, lp, eth, majors, everyone
):
    """dYdX YFI 2023: the price gaps from 3,000 to 3,600, far through the trader's
    liquidation price (3,236.67) and bankruptcy price (3,398.50)."""
    pool = system.pools["majors"]
    kit.seed(pool, kit.usd(50_000), lp)
    kit.eth(3600)
    before = kit.health(trader, majors)
    assert int(before.equity) == -kit.usd(2015)
    pool_assets = int(pool.managed_assets())

    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (liq,) = kit.events(receipt, engine.Liquidated)
    assert liq.full_close and liq.size == wad(10) and liq.penalty == 0
    deficit = -int(before.equity) + liq.keeper_fee  # reward 0 at t = 0; the fee floor is added
    assert deficit == kit.usd(2017)
    (cover,) = kit.events(receipt, pool.Cover)
    assert (cover.requested, cover.paid_by_pool, cover.paid_by_backstop, cover.unpaid) == (deficit, deficit, 0, 0)
    (covered,) = kit.events(receipt, system.vault.BadDebtCovered)
    assert (covered.deficit, covered.paid, covered.unpaid) == (deficit, deficit, 0)
    (settled,) = kit.events(receipt, engine.BadDebtSettled)
    assert settled.unpaid == 0
    assert pool_assets - int(pool.managed_assets()) == deficit
    assert int(system.vault.collateral(trader, majors)) == 0
    assert system.vault.position(trader, eth.id)[0] == 0
    assert engine.flagged_at(trader, majors) == 0
    kit.conservation(everyone)

    # the winner closes (against the keeper, who took the short over) and withdraws in full
    trade(system, maker, keeper, eth.id, -wad(10), wad(3600))
    assert system.vault.position(maker, eth.id)[0] == 0
    owed = int(system.vault.collateral(maker, majors))
    assert owed == kit.usd(106_000)
    wallet = int(system.token.balanceOf(maker))
    system.vault.withdraw(majors, owed, sender=maker)
    assert int(system.token.balanceOf(maker)) - wallet == kit.usd(106_000)
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_empty_pools_liquidation_closes_and_leaves_the_deficit_to_adl(
    short_eth, system, kit, engine, trader, maker, keeper, eth, majors, everyone
):
    """Issue 9.3 (no dead ends): with empty pools a bankrupt position is still liquidated
    (at mark, the keeper gets the fee floor only, so it is never paid to wait); the unpaid
    deficit is evented, the segment's withdrawals are gated, and a residual `deleverage`
    takes it from the most profitable position left (the maker's long) - at most that
    position's profit, never below zero."""
    kit.eth(3600)
    deficit = -_equity(kit, trader, majors)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    (liq,) = kit.events(receipt, engine.Liquidated)
    floor = int(engine.params().keeper_fee_floor)
    assert (liq.discount, liq.penalty, liq.keeper_fee, liq.price) == (0, 0, floor, wad(3600))
    (settled,) = kit.events(receipt, engine.BadDebtSettled)
    assert settled.unpaid == deficit + floor == -int(system.vault.collateral(trader, majors))
    (gate,) = kit.events(receipt, system.vault.WithdrawalsGated)
    assert gate.segment == majors and gate.until == kit.now() + int(engine.WITHDRAWAL_GATE())
    with ape.reverts("vault: withdrawals gated"):
        system.vault.withdraw(majors, kit.usd(1), sender=maker)

    winner_before = _equity(kit, maker, majors)
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert ev.price == ev.mark == wad(3600) and ev.socialized_loss == deficit + floor
    assert _equity(kit, maker, majors) == winner_before - ev.socialized_loss
    assert int(system.vault.collateral(trader, majors)) == 0
    assert int(system.vault.position(maker, eth.id)[0]) == wad(10)  # the round trip keeps its size
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_deleverage_socializes_exactly_the_deficit(short_eth, system, kit, engine, trader, maker, keeper, eth, majors, everyone):
    kit.eth(3600)
    deficit = -_equity(kit, trader, majors)
    assert deficit == kit.usd(2015)
    winner_before = _equity(kit, maker, majors)
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert (ev.owner, ev.counterparty, ev.keeper) == (trader.address, maker.address, keeper.address)
    assert ev.size == wad(10) and ev.mark == wad(3600) and ev.price < ev.mark
    assert ev.socialized_loss == wad(10) * (ev.mark - ev.price) // kit.scale
    assert 0 <= ev.socialized_loss - deficit <= ROUNDING
    loss = winner_before - _equity(kit, maker, majors)
    assert 0 <= loss - deficit <= ROUNDING, (loss, deficit)
    # the bankrupt account ends flat at zero (up to rounding), nothing left for the pool
    assert system.vault.position(trader, eth.id)[0] == 0
    final = int(system.vault.collateral(trader, majors))
    assert -ROUNDING <= final <= ROUNDING, final
    assert system.vault.position(maker, eth.id)[0] == 0
    assert engine.flagged_at(trader, majors) == 0
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_deleverage_takes_the_whole_uncovered_loss_from_the_first_counterparty_that_can(
    short_eth, system, kit, engine, trader, maker, keeper, eth, majors
):
    """Greedy ADL (issue 9.2/9.3): deleveraging 4 of the 10 ETH against the maker takes the whole
    uncovered loss (2,015 <= the maker's 2,400 of profit on 4 ETH), at 3,600 - 503.75 per ETH;
    the rest of the position is then solvent (equity ~0 < MM), so ADL shuts and it is
    liquidated like any other account."""
    kit.eth(3600)
    deficit = -_equity(kit, trader, majors)
    winner_before = _equity(kit, maker, majors)
    receipt = engine.deleverage(trader, eth.id, maker, wad(4), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert 0 <= ev.socialized_loss - deficit <= ROUNDING
    assert 0 <= winner_before - _equity(kit, maker, majors) - deficit <= ROUNDING
    assert 0 <= _equity(kit, trader, majors) <= ROUNDING
    with ape.reverts("engine: no unpaid deficit"):
        engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    assert system.vault.position(trader, eth.id)[0] == 0
    # at most the keeper fee floor is left unpaid (equity ~0: the pools are empty here)
    assert int(system.vault.collateral(trader, majors)) >= -kit.usd(2) - ROUNDING


def test_deleverage_same_side_counterparty_reverts(short_eth, system, kit, engine, trader, maker, keeper, other, eth, majors):
    kit.fund(other, majors, 1_000)
    kit.eth(3600)
    trade(system, maker, other, eth.id, wad(1), wad(3650))  # other short too, and profitable
    with ape.reverts("engine: counterparty not opposite"):
        engine.deleverage(trader, eth.id, other, wad(10), sender=keeper)
    with ape.reverts("engine: counterparty not opposite"):  # no position at all
        engine.deleverage(trader, eth.id, keeper, wad(10), sender=keeper)
    with ape.reverts("engine: self-deleverage"):
        engine.deleverage(trader, eth.id, trader, wad(10), sender=keeper)


def test_deleverage_losing_counterparty_reverts(short_eth, system, kit, engine, trader, keeper, whale, eth, majors):
    kit.fund(whale, majors, 10_000)
    kit.eth(3600)
    trade(system, whale, keeper, eth.id, wad(1), wad(3650))  # whale long, losing 50 at 3,600
    with ape.reverts("engine: counterparty not profitable"):
        engine.deleverage(trader, eth.id, whale, wad(1), sender=keeper)


def test_deleverage_without_unpaid_deficit_during_auction_reverts(short_eth, system, kit, engine, trader, maker, keeper, lp, eth, majors):
    kit.seed(system.pools["majors"], kit.usd(50_000), lp)  # the pool can pay
    kit.eth(3600)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 599)
    with ape.reverts("engine: no unpaid deficit"):
        engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)


def test_deleverage_of_solvent_liquidatable_account_during_auction_reverts(short_eth, kit, engine, trader, maker, keeper, eth, majors):
    kit.eth(3300)
    engine.flag(trader, majors, sender=keeper)
    with ape.reverts("engine: no unpaid deficit"):
        engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)


def test_after_auction_end_deleverage_allowed_and_pool_covers(short_eth, system, kit, engine, trader, maker, keeper, lp, eth, majors, everyone):
    pool = system.pools["majors"]
    kit.seed(pool, kit.usd(50_000), lp)
    kit.eth(3600)
    engine.flag(trader, majors, sender=keeper)
    kit.at(engine.flagged_at(trader, majors) + 600)
    kit.eth(3600)  # re-published after the time travel
    deficit = -_equity(kit, trader, majors)
    assets = int(pool.managed_assets())
    # ADL after the auction needs the liquidator of last resort to refuse: the backstop is empty
    assert int(system.liquidator.refusal(*kit.takeover_terms(trader, eth, wad(10)))) != 0
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert ev.price == ev.mark and ev.socialized_loss == 0  # the pool can pay: no haircut
    (cover,) = kit.events(receipt, pool.Cover)
    assert cover.requested == cover.paid_by_pool == deficit and cover.unpaid == 0
    assert assets - int(pool.managed_assets()) == deficit
    assert int(system.vault.collateral(trader, majors)) == 0
    assert engine.flagged_at(trader, majors) == 0
    kit.conservation(everyone)


def test_after_auction_end_solvent_account_deleveraged_at_mark(short_eth, system, kit, engine, trader, maker, keeper, eth, majors):
    kit.eth(3300)
    equity = _equity(kit, trader, majors)
    engine.flag(trader, majors, sender=keeper)
    # ADL after the auction needs the liquidator of last resort to refuse: the backstop is empty
    assert int(system.liquidator.refusal(*kit.takeover_terms(trader, eth, wad(10)))) != 0
    kit.at(engine.flagged_at(trader, majors) + 600)
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert ev.price == ev.mark
    assert system.vault.position(trader, eth.id)[0] == 0
    assert int(system.vault.collateral(trader, majors)) == equity


@pytest.fixture
def sol_short(book, system, maker, trader, keeper, sol, alts):
    """Trader 10 SOL short at 150 on 200 of alts collateral; SOL gaps to 200 (equity -300.75)."""
    book.fund(maker, alts, 100_000)
    book.fund(keeper, alts, 10_000)
    book.fund(trader, alts, 200)
    trade(system, maker, trader, sol.id, wad(10), wad(150))
    book.price("SOL-PERP", 200)
    assert int(book.health(trader, alts).equity) == -book.usd("300.75")
    return book


def _pool_state(pool):
    return int(pool.totalAssets()), int(pool.managed_assets()), int(pool.totalSupply())


def test_alts_bankruptcy_never_touches_majors_pool(sol_short, system, kit, engine, trader, maker, keeper, lp, sol, alts, everyone):
    majors_pool, alts_pool, backstop = system.pools["majors"], system.pools["alts"], system.backstop
    kit.seed(majors_pool, kit.usd(50_000), lp)
    kit.seed(backstop, kit.usd(400), lp)  # draw cap 25%: 100 for alts
    majors_state = _pool_state(majors_pool)
    majors_balance = int(system.token.balanceOf(majors_pool))

    # the pools cannot pay all of it: ADL at the (bounded) bankruptcy price
    receipt = engine.deleverage(trader, sol.id, maker, wad(10), sender=keeper)
    draws = kit.events(receipt, backstop.Draw)
    assert len(draws) == 1 and draws[0].member == alts_pool.address and draws[0].paid == kit.usd(100)
    assert kit.events(receipt, majors_pool.Cover) == [] or all(
        c.contract_address == alts_pool.address for c in kit.events(receipt, majors_pool.Cover)
    )
    assert int(system.vault.collateral(trader, alts)) >= -ROUNDING
    assert _pool_state(majors_pool) == majors_state
    assert int(system.token.balanceOf(majors_pool)) == majors_balance
    kit.conservation(everyone)


def test_alts_pool_pays_alts_deficit_majors_unchanged(sol_short, system, kit, engine, trader, keeper, lp, sol, alts, everyone):
    majors_pool, alts_pool = system.pools["majors"], system.pools["alts"]
    kit.seed(majors_pool, kit.usd(50_000), lp)
    kit.seed(alts_pool, kit.usd(1_000), lp)
    majors_state = _pool_state(majors_pool)
    receipt = engine.liquidate(trader, sol.id, wad(10), sender=keeper)
    covers = kit.events(receipt, alts_pool.Cover)
    assert [c.contract_address for c in covers] == [alts_pool.address]
    assert covers[0].paid_by_pool == kit.usd("302.75")  # 300.75 + keeper fee floor 2
    assert _pool_state(majors_pool) == majors_state
    kit.conservation(everyone)


def test_two_keepers_race_second_takes_remainder(short_eth, system, kit, engine, trader, maker, keeper, keeper2, eth, majors, everyone):
    kit.fund(keeper2, majors, 100_000)
    kit.eth(3300)  # still liquidatable after one 25% call
    engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    receipt = engine.liquidate(trader, eth.id, wad(10), sender=keeper2)
    assert kit.events(receipt, engine.Liquidated)[0].size == wad("7.5") // 4
    assert int(system.vault.position(keeper, eth.id)[0]) == -wad("2.5")
    assert int(system.vault.position(keeper2, eth.id)[0]) == -(wad("7.5") // 4)
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_two_keepers_race_second_reverts_once_healthy(short_eth, system, kit, engine, trader, keeper, keeper2, eth, majors, everyone):
    kit.fund(keeper2, majors, 100_000)
    kit.eth(3250)  # one 25% call restores equity >= MM
    engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    with ape.reverts("engine: account healthy"):
        engine.liquidate(trader, eth.id, wad(10), sender=keeper2)
    assert engine.flagged_at(trader, majors) == 0
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_two_keepers_race_full_close_second_reverts(short_eth, system, kit, engine, trader, keeper, keeper2, lp, eth, majors, everyone):
    kit.fund(keeper2, majors, 100_000)
    kit.seed(system.pools["majors"], kit.usd(50_000), lp)
    kit.eth(3350)
    engine.liquidate(trader, eth.id, wad(10), sender=keeper)
    with ape.reverts("engine: account healthy"):  # flat: MM = 0
        engine.liquidate(trader, eth.id, wad(10), sender=keeper2)
    assert int(system.vault.position(keeper, eth.id)[0]) == -wad(10)
    assert system.vault.position(keeper2, eth.id)[0] == 0
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)


def test_regression_deleverage_after_collapse_socializes_whole_deficit(long_eth, system, kit, engine, trader, maker, keeper, eth, majors, everyone):
    """Regression (found by the fuzzer): the ADL haircut was capped at 100% of the mark, so
    after a collapse where a long's deficit exceeds its notional at mark (ETH 3,000 -> 200:
    deficit 24,000 on 2,000 of notional) the bankruptcy price was out of reach and part of
    the deficit stayed unpaid with empty pools. A long's bankruptcy price may be many times
    the mark: the counterparty short gives back the profit it made on the collapse."""
    kit.eth(200)
    deficit = -_equity(kit, trader, majors)
    assert deficit > int(kit.health(trader, majors).notional)  # loss beyond the notional at mark
    winner_before = _equity(kit, maker, majors)
    receipt = engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper)
    (ev,) = kit.events(receipt, engine.Deleveraged)
    assert ev.price > 2 * ev.mark
    assert 0 <= ev.socialized_loss - deficit <= ROUNDING
    assert 0 <= (winner_before - _equity(kit, maker, majors)) - deficit <= ROUNDING
    assert system.vault.position(trader, eth.id)[0] == 0
    assert -ROUNDING <= int(system.vault.collateral(trader, majors)) <= ROUNDING
    kit.positions_sum_to_zero(everyone, eth.id)
    kit.conservation(everyone)
