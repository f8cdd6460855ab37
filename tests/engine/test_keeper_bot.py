"""The keeper that wins a crash (backstop.keeper.Keeper) and the engine's liquidate_batch it sends.

A crowd of traders is 1 ETH short each at 3,000 against the maker (collateral 400: liquidatable
above ~3,290, bankrupt above ~3,396); the keeper holds a margin account in majors.
"""

from __future__ import annotations

import pytest
from ape import accounts, chain
from ape.exceptions import ContractLogicError

from backstop.client.actors import fund, trade
from backstop.client.rpc import Rpc
from backstop.core.units import quote, wad
from backstop.keeper import Keeper, Watchlist, ensure_margin
from backstop.keeper.watch import LENS_BATCH

SHORT = wad(1)
CROWD_COLLATERAL = 400


def _traders(n: int) -> list:
    out = []
    for _ in range(n):
        acct = accounts.test_accounts.generate_test_account()
        acct.balance = 10**20
        out.append(acct)
    return out


@pytest.fixture
def crowd_book(book, system, maker, majors, eth):
    """`book` plus 12 generated traders, each 1 ETH short at 3,000 against the maker."""
    shorts = _traders(12)
    for t in shorts:
        fund(system, t, majors, quote(CROWD_COLLATERAL, system.decimals))
        trade(system, maker, t, eth.id, SHORT, wad(3000))
    return shorts


@pytest.fixture
def bot(system, keeper, crowd_book):
    """A keeper that watches only what a test adds (it learns events from the next block on)."""
    return Keeper(system, keeper, gas_price_wei=0, start_block=chain.blocks.head.number + 1)


def _crash(book, p=3_360):
    """Every crowd short is liquidatable (not bankrupt) at 3,360."""
    book.eth(p)
    return chain.blocks.head.number


def _liquidated(system, receipt_or_none=None) -> int:
    return len(list(system.engine.Liquidated.range(0, chain.blocks.head.number + 1)))


# ---------------------------------------------------------------- engine: liquidate_batch


def test_batch_skips_items_that_would_revert(crowd_book, book, system, keeper, maker, trader, eth, majors):
    victim, *_ = crowd_book
    _crash(book)
    orders = [
        (trader.address, eth.id, SHORT),  # never traded: healthy and flat
        (victim.address, eth.id, SHORT),  # liquidatable
        (maker.address, eth.id, SHORT),  # healthy
        (keeper.address, eth.id, SHORT),  # self-liquidation
        (victim.address, 999, SHORT),  # unknown market
    ]
    closed = system.engine.liquidate_batch.call(orders, sender=keeper)
    assert closed[0] == 0 and closed[1] > 0 and closed[2:] == [0, 0, 0]
    receipt = system.engine.liquidate_batch(orders, sender=keeper)
    (event,) = receipt.decode_logs(system.engine.Liquidated)
    assert event.owner == victim.address and event.liquidator == keeper.address and event.size == closed[1]
    # the first liquidation flagged the account by itself, in the keeper's name
    (flagged,) = receipt.decode_logs(system.engine.Flagged)
    assert flagged.owner == victim.address and flagged.flagged_by == keeper.address
    assert int(system.vault.position(keeper, eth.id)[0]) == -int(closed[1])


def test_batch_items_are_not_callable_from_outside(crowd_book, book, system, attacker, eth):
    victim = crowd_book[0]
    _crash(book)
    with pytest.raises(ContractLogicError, match="engine: batch only"):
        system.engine.liquidate_for(attacker, victim, eth.id, SHORT, sender=attacker)


def test_batch_over_the_limit_is_refused(system, keeper, eth):
    limit = int(system.engine.MAX_BATCH())
    with pytest.raises(Exception):
        system.engine.liquidate_batch([(keeper.address, eth.id, 1)] * (limit + 1), sender=keeper)


def test_batch_respects_the_pause(crowd_book, book, system, keeper, deployer, eth):
    _crash(book)
    system.engine.pause(sender=deployer)
    closed = system.engine.liquidate_batch.call([(crowd_book[0].address, eth.id, SHORT)], sender=keeper)
    assert closed == [0]


# ---------------------------------------------------------------- the bot


def test_keeper_liquidates_a_whole_crash_in_the_next_block(crowd_book, book, system, bot, majors, eth):
    bot.watch.add(majors, crowd_book)
    update_block = _crash(book)
    summary = bot.run()
    assert summary["liquidatable"] == len(crowd_book) and summary["sent"] == 1  # one batch, no flag txs
    bot.drain()
    assert bot.metrics.liquidations == len(crowd_book) and bot.metrics.misses == 0
    blocks = {int(log.block_number) for log in system.engine.Liquidated.range(update_block, chain.blocks.head.number + 1)}
    assert blocks == {update_block + 1}
    assert max(bot.metrics.latency_blocks) == 1
    assert bot.metrics.profit > 0


def test_keeper_learns_accounts_from_events(crowd_book, book, system, keeper, majors):
    fresh = Keeper(system, keeper, gas_price_wei=0, start_block=0)
    _crash(book)
    fresh.run()
    assert {t.address for t in crowd_book} <= fresh.watch.active[majors]
    assert fresh.metrics.sent == 1
    fresh.drain()
    assert fresh.metrics.liquidations == len(crowd_book)


def test_scan_is_chunked_to_the_lens_batch_and_prunes_flat_accounts(system, keeper, majors):
    rpc = Rpc.from_ape()
    watch = Watchlist(next_block=chain.blocks.head.number + 1)
    many = [f"0x{k:040x}" for k in range(1, 2 * LENS_BATCH + 45)]
    watch.add(majors, many)
    calls = rpc.calls
    rows = watch.scan(system, rpc)[majors]
    assert rpc.calls == calls + 1  # three health_of calls, one round trip
    assert len(rows) == len(many) and not any(r.liquidatable for r in rows)
    assert watch.active[majors] == set() and len(watch.dormant[majors]) == len(many)


def test_a_pruned_account_wakes_up_when_it_trades(funded, system, maker, trader, keeper, majors, eth):
    rpc = Rpc.from_ape()
    watch = Watchlist(next_block=0)
    watch.learn(system, rpc, chain.blocks.head.number)
    assert trader.address in watch.active[majors]
    watch.scan(system, rpc)
    assert trader.address in watch.dormant[majors]  # deposited, flat
    trade(system, maker, trader, eth.id, wad(1), wad(3000))
    watch.learn(system, rpc, chain.blocks.head.number)
    assert trader.address in watch.active[majors] and trader.address not in watch.dormant[majors]


def test_unprofitable_work_is_left(crowd_book, book, system, keeper, majors):
    bot = Keeper(system, keeper, gas_price_wei=0, min_profit=quote(10**9, system.decimals))
    bot.watch.add(majors, crowd_book)
    _crash(book)
    summary = bot.run()
    assert summary["sent"] == 0 and summary["unprofitable"] == len(crowd_book)


def test_gas_is_counted_against_profit(crowd_book, book, system, keeper, majors):
    # at 10,000 gwei and ETH at 3,360 an item's gas costs ~8,700 quote units: more than any discount here
    bot = Keeper(system, keeper, gas_price_wei=10**13)
    bot.watch.add(majors, crowd_book)
    _crash(book)
    assert bot.run()["unprofitable"] == len(crowd_book)


def test_an_unfunded_keeper_sends_nothing_and_keeps_running(crowd_book, book, system, keeper2, majors):
    bot = Keeper(system, keeper2, gas_price_wei=0)
    bot.watch.add(majors, crowd_book)
    _crash(book)
    summary = bot.run()
    assert summary["sent"] == 0 and summary["unfunded"] == len(crowd_book) and summary["errors"] == 0
    ensure_margin(system, keeper2, quote(50_000, system.decimals), segments=[majors])
    assert bot.run()["sent"] == 1
    bot.drain()
    assert bot.metrics.liquidations == len(crowd_book)


def test_ensure_margin_tops_up_to_the_target_only(system, keeper2, majors, alts):
    target = quote(1_000, system.decimals)
    deposited = ensure_margin(system, keeper2, target, segments=[majors, alts])
    assert deposited == {majors: target, alts: target}
    assert ensure_margin(system, keeper2, target, segments=[majors, alts]) == {majors: 0, alts: 0}
    assert int(system.lens.free_margin(keeper2, majors)) == target


def test_a_lost_race_is_a_miss_not_a_crash(crowd_book, book, system, bot, keeper2, majors, eth):
    victim = crowd_book[0]
    bot.watch.add(majors, [victim])
    ensure_margin(system, keeper2, quote(50_000, system.decimals), segments=[majors])
    _crash(book)
    chain.provider.auto_mine = False
    try:
        bot.run()  # in the mempool
        rival = system.engine.liquidate_batch.as_transaction(
            [(victim.address, eth.id, SHORT)], sender=keeper2, gas=2_000_000,
            max_priority_fee=10**11, max_fee=10**12)
        keeper2.call(rival, required_confirmations=0)
        chain.mine()
    finally:
        chain.provider.auto_mine = True
    bot.drain()
    summary = bot.metrics.summary()
    assert summary["misses"] == 1 and summary["liquidations"] == 0 and summary["reverted"] == 0
    assert summary["errors"] == 0


def test_a_dropped_transaction_is_rebroadcast(crowd_book, book, system, bot, majors):
    bot.watch.add(majors, crowd_book[:3])
    _crash(book)
    chain.provider.auto_mine = False
    try:
        bot.run()
        (tx_hash,) = list(bot.pending)
        chain.provider.make_request("anvil_dropTransaction", [tx_hash])
        chain.mine(3)
        bot.run()  # not mined, not in the mempool: re-broadcast
        assert bot.metrics.retried == 1
        chain.mine()
    finally:
        chain.provider.auto_mine = True
    bot.drain()
    assert bot.metrics.liquidations == 3


def test_a_node_error_is_counted_not_raised(system, keeper):
    bot = Keeper(system, keeper, rpc=Rpc("http://127.0.0.1:9"), gas_price_wei=0)
    summary = bot.run()
    assert summary["errors"] == 1 and bot.metrics.last_error


def test_the_waterfall_tail_is_handed_to_the_sequential_policy(book, system, bot, maker, trader, majors, eth):
    # a lone bankrupt short and empty pools: the batch closes it, the pools pay nothing, and the bad debt
    # left on the flat account goes to settle + residual ADL against the profitable maker
    book.fund(trader, majors, 400)
    trade(system, maker, trader, eth.id, SHORT, wad(3000))
    bot.watch.add(majors, [trader, maker])
    book.eth(3_600)
    for _ in range(3):
        bot.run()
        bot.drain()
    assert int(system.vault.position(trader, eth.id)[0]) == 0
    assert int(system.vault.collateral(trader, majors)) >= 0
    assert bot.metrics.fallbacks > 0
