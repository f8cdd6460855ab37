"""Premium funding and size-aware margin (docs in WIP-funding.md until they land in docs/margin.md).

Expected numbers come from backstop.core.ledger.Model / backstop.core.funding (the documented rules),
never from the vault; time moves only where a test says so (the frozen test clock).
"""

import ape
import pytest

from backstop.client.actors import set_price, trade
from backstop.core.funding import FUNDING_PERIOD, PREMIUM_WINDOW, FundingState, knee_units, margins
from backstop.core.units import wad


@pytest.fixture
def later(chain, funded, eth, deployer):
    """Move time on by `seconds` and refresh ETH's feed at its price (a feed older than its heartbeat
    is stale); returns the new timestamp, which the next transactions share (frozen test clock)."""

    price = int(funded.oracle.price(eth.id))

    def move(seconds: int) -> int:
        t = chain.blocks.head.timestamp + seconds
        chain.pending_timestamp = t
        set_price(funded, "ETH-PERP", price, deployer)
        return t

    return move


def _mark(system, market) -> int:
    return int(system.oracle.price(market.id))


def _segment_claims(system, owners, segment) -> int:
    return sum(int(system.vault.collateral(o, segment)) for o in owners)


def test_fill_above_mark_sets_a_positive_premium(later, funded, eth, maker, trader):
    mark = _mark(funded, eth)
    t = later(600)
    trade(funded, maker, trader, eth.id, wad(1), mark * 101 // 100)
    # the market's first fill: nothing to fade, full weight (elapsed >= one window)
    assert tuple(funded.lens.funding(eth.id)) == (0, (mark * 101 // 100 - mark) * 10**18 // mark, t)


def test_longs_pay_shorts_when_fills_trade_above_mark(later, funded, eth, majors, maker, trader):
    mark = _mark(funded, eth)
    later(PREMIUM_WINDOW)
    trade(funded, maker, trader, eth.id, wad(10), mark * 1005 // 1000)  # maker long above mark
    long_equity = funded.lens.equity(maker, majors)
    short_equity = funded.lens.equity(trader, majors)
    later(PREMIUM_WINDOW)  # no fill: health counts the funding accrued since the last one
    index = funded.vault.funding_index(eth.id, mark)
    assert index > 0
    paid = funded.lens.equity(maker, majors) - long_equity
    received = funded.lens.equity(trader, majors) - short_equity
    assert paid < 0 < received
    assert abs(paid + received) <= 1  # zero-sum up to each side's floor rounding


def test_funding_is_zero_sum_to_the_wei(later, chain, funded, eth, majors, maker, trader):
    vault = funded.vault
    token = funded.token
    balance_before = token.balanceOf(vault)
    mark = _mark(funded, eth)
    later(PREMIUM_WINDOW)
    trade(funded, maker, trader, eth.id, wad(7), mark * 1003 // 1000)
    later(5 * PREMIUM_WINDOW)
    trade(funded, trader, maker, eth.id, wad(7), mark)  # closes both sides at mark
    assert vault.position(maker, eth.id) == (0, 0) and vault.position(trader, eth.id) == (0, 0)
    cash, _ = funded.lens.segment_cash(majors)
    fees = funded.lens.accrued_fees(eth.id)
    assert cash == _segment_claims(funded, (maker, trader), majors) + fees + funded.lens.accrued_penalties(eth.id)
    assert token.balanceOf(vault) == balance_before


def test_funding_accrues_at_most_once_per_block(later, chain, funded, eth, maker, trader):
    mark = _mark(funded, eth)
    later(PREMIUM_WINDOW)
    trade(funded, maker, trader, eth.id, wad(1), mark * 1005 // 1000)
    word = funded.vault.market_funding(eth.id)
    chain.provider.make_request("evm_setAutomine", [False])
    try:
        trade(funded, maker, trader, eth.id, wad(1), mark * 1010 // 1000, required_confirmations=0)
        trade(funded, trader, maker, eth.id, wad(1), mark * 990 // 1000, required_confirmations=0)
        chain.mine(timestamp=chain.blocks.head.timestamp)
    finally:
        chain.provider.make_request("evm_setAutomine", [True])
    assert funded.vault.market_funding(eth.id) == word


def test_accrual_is_clamped_to_half_the_margin_gap(later, chain, funded, eth, maker, trader):
    params = funded.lens.market(eth.id)
    mark = _mark(funded, eth)
    band = int(params.price_band_bps)
    later(PREMIUM_WINDOW)
    trade(funded, maker, trader, eth.id, wad(1), mark + mark * band // 10_000)  # premium at the band edge
    index0, premium, last = funded.lens.funding(eth.id)
    state = FundingState(index0, premium, last)
    then = last + FUNDING_PERIOD
    expected = state.index_at(then, int(params.im_ratio), int(params.mm_ratio), mark)
    gap = (int(params.im_ratio) - int(params.mm_ratio)) // 2
    assert premium > gap  # the clamp binds
    later(FUNDING_PERIOD)
    assert funded.vault.funding_index(eth.id, mark) == expected
    # the whole fading period pays half the clamp: rate x P / 2
    assert expected - index0 == gap * mark // (2 * 10**18)


def test_size_knee_doubles_margin_at_the_knee(funded, eth, majors, maker, trader, configurator, deployer, params, usd):
    knee = 1  # 10,000 quote tokens
    configurator.set_market_params(eth.id, params(funded, "ETH-PERP", size_knee=knee), sender=deployer)
    mark = _mark(funded, eth)
    size = wad(10_000) * 10**18 // mark  # ~10,000 quote notional: one knee
    trade(funded, maker, trader, eth.id, size, mark)
    notional = -((-size * mark) // 10 ** (36 - funded.decimals))
    p = funded.lens.market(eth.id)
    expected = margins(notional, int(p.im_ratio), int(p.mm_ratio), knee_units(knee, funded.decimals))
    assert tuple(funded.lens.margin_requirements(maker, majors)) == expected
    flat_im = -((-notional * int(p.im_ratio)) // 10**18)
    assert expected[0] >= 2 * flat_im - 1  # one knee of notional: twice the base margin


def test_size_knee_beyond_its_width_reverts(funded, eth, configurator, deployer, params):
    with ape.reverts("configurator: bad size knee"):
        configurator.set_market_params(eth.id, params(funded, "ETH-PERP", size_knee=2**16), sender=deployer)
