"""Deterministic reproductions of what the stateful fuzzer found (see test_stateful.py).

Each test asserts the invariant as docs/design.md states it; a test that reproduces a contract
bug that is not fixed yet is marked xfail(strict=True): it turns into an XPASS failure the
day the contract is fixed, and the marker (and the fuzzer's FUZZ_KNOWN tolerance) must go.
"""

import pytest
from ape import chain

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import quote, wad

pytestmark = pytest.mark.fuzz


def test_regression_full_close_lowers_margin_ratio(system, deployer, maker, trader, keeper):
    """Found by the fuzzer as '(4b) liquidation lowered margin ratio ... (full_close=True, account still open)'
    against engine d850cc5/b79f812 (discount uncapped in the full-close tier and for dust, keeper-fee floor
    charged to an account that stays open); fixed by 4247406 ("ratio guard for any call leaving the
    account open"). This test pins the fix.

    Before the fix:
    Trader (majors, 10,000 collateral) is long 10 ETH @ 3,000 and long 0.5 BTC @ 60,000 (maker
    side, no fee). ETH falls to 2,100: equity 1,000 < MM/2 = 1,275 -> full-close tier. After the
    600 s auction the discount is 5%: keeper takes the whole BTC position at 57,000. The trader's
    equity goes 1,000 -> -500 while the ETH position stays open: ratio 0.39 -> negative, and the
    account is now bankrupt (bad debt for the pool) although it was solvent before the call.
    """
    usd = lambda x: quote(x, system.decimals)  # noqa: E731
    vault, engine = system.vault, system.engine
    eth, btc = system.markets["ETH-PERP"], system.markets["BTC-PERP"]
    majors = system.segments["majors"]
    fund(system, trader, majors, usd(10_000))
    fund(system, maker, majors, usd(200_000))
    fund(system, keeper, majors, usd(200_000))
    trade(system, trader, maker, eth.id, wad(10), wad(3000))
    trade(system, trader, maker, btc.id, wad("0.5"), wad(60_000))

    set_price(system, "ETH-PERP", wad(2100), deployer)
    before = vault.account_health(trader, majors)
    assert before.equity < before.mm // 2  # full-close tier
    engine.flag(trader, majors, sender=keeper)
    chain.mine(deltatime=700)  # auction at its 5% ceiling

    receipt = engine.liquidate(trader, btc.id, wad("0.5"), sender=keeper)
    (event,) = receipt.events.filter(engine.Liquidated)
    assert event.full_close  # the whole BTC position went, in the full-close tier
    after = vault.account_health(trader, majors)
    assert after.mm > 0  # the ETH position is still open: the account was not closed fully
    assert before.equity > 0
    # docs/design.md, invariant 4: "a liquidation never lowers the liquidated account's margin ratio
    # unless it closes the account fully"
    assert after.equity * before.mm >= before.equity * after.mm, (
        f"ratio {before.equity}/{before.mm} -> {after.equity}/{after.mm}")
