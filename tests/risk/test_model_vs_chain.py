"""The numpy liquidation model (backstop.risk.margin) against the deployed engine, to the wei.

24 seeded random books: the trader opens a long or short ETH position at 3,000 at a random leverage, the oracle gaps
against it (from just past the liquidation price to far past bankruptcy), sometimes after the auction clock ran for
a while, and the real engine liquidates. The model, fed only the account state and the oracle mark, must give the
same size, price, penalty, keeper fee, deficit, pool/backstop split and final collateral.
"""

from __future__ import annotations

import numpy as np
import pytest
from ape import chain

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import WAD
from backstop.risk.margin import EngineParams, cover, liquidatable, liquidate

CASES = 24
OPEN = 3000 * WAD


def _case(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    size = int(rng.integers(10**5, 2 * 10**7)) * 10**12  # 0.1 to 20 ETH
    leverage = float(rng.uniform(2.0, 9.5))
    mm = 0.05
    # adverse move from just past the liquidation threshold to 15% past bankruptcy
    move = float(rng.uniform(1 / leverage - mm * 0.9, 1 / leverage + 0.15))
    return {
        "long": bool(rng.integers(0, 2)),
        "size": size,
        "collateral_usd": round(size / WAD * 3000 / leverage, 2),
        "move": min(move, 0.6),
        "pool_usd": int(rng.choice([0, 50, 500, 5_000, 50_000])),
        "elapsed": int(rng.choice([0, 0, 120, 300, 900])),
    }


@pytest.mark.parametrize("seed", range(CASES))
def test_liquidation_matches_chain_to_the_wei(seed, system, deployer, maker, trader, keeper, lp, usd):
    c = _case(seed)
    eth, majors, pool, vault, engine = (system.markets["ETH-PERP"], system.segments["majors"],
                                        system.pools["majors"], system.vault, system.engine)
    fund(system, maker, majors, usd(200_000))
    fund(system, keeper, majors, usd(200_000))
    fund(system, trader, majors, usd(c["collateral_usd"]))
    if c["pool_usd"]:
        system.token.mint(lp, usd(c["pool_usd"]), sender=lp)
        system.token.approve(pool, usd(c["pool_usd"]), sender=lp)
        pool.deposit(usd(c["pool_usd"]), lp, sender=lp)
    # the trader signs (maker fee 0) and the counterparty takes
    trade(system, trader, maker, eth.id, c["size"] if c["long"] else -c["size"], OPEN)
    gap = 1 - c["move"] if c["long"] else 1 + c["move"]
    set_price(system, "ETH-PERP", int(OPEN * gap) // 10**10 * 10**10, deployer)
    mark = int(system.oracle.price(eth.id))

    spec = engine.params()
    params = EngineParams(*[int(x) for x in spec], mm_ratio=int(system.lens.market(eth.id).mm_ratio),
                          scale=int(vault.notional_scale()))
    size, entry = (int(x) for x in vault.position(trader, eth.id))
    collateral = int(vault.collateral(trader, majors))
    state = [np.array([x], dtype=object) for x in (collateral, size, entry)]
    assert liquidatable(*state, np.array([mark], dtype=object), params)[0]

    elapsed = 0
    if c["elapsed"]:
        engine.flag(trader, majors, sender=keeper)
        start = int(chain.blocks.head.timestamp)
        chain.pending_timestamp = start + c["elapsed"]
        set_price(system, "ETH-PERP", mark, deployer)  # keep the feed fresh at the new time
        elapsed = int(chain.pending_timestamp) - start
    pool_assets = int(pool.managed_assets())
    backstop_capacity = int(system.backstop.draw_capacity(pool))  # what the majors pool may still draw

    model = liquidate(*state, np.array([mark], dtype=object), params, elapsed=elapsed)
    receipt = engine.liquidate(trader, eth.id, abs(size), sender=keeper)

    (liq,) = receipt.decode_logs(engine.Liquidated)
    assert (liq.size, liq.price, liq.penalty, liq.keeper_fee) == (
        model.amount[0], model.price[0], model.penalty[0], model.keeper_fee[0])
    deficit = int(model.deficit[0])
    covered = list(receipt.decode_logs(vault.BadDebtCovered))
    paid = 0
    if deficit:
        by_pool, by_backstop, unpaid = (int(x[0]) for x in cover(model.deficit, np.array([pool_assets], dtype=object),
                                                               np.array([backstop_capacity], dtype=object)))
        (event,) = covered
        assert (event.deficit, event.paid, event.unpaid) == (deficit, by_pool + by_backstop, unpaid)
        paid = by_pool + by_backstop
        if pool_assets or backstop_capacity:
            (pool_cover,) = receipt.decode_logs(pool.Cover)
            assert (pool_cover.paid_by_pool, pool_cover.paid_by_backstop) == (by_pool, by_backstop)
    else:
        assert covered == []
    assert int(vault.collateral(trader, majors)) == int(model.collateral[0]) + paid
    assert int(vault.position(trader, eth.id)[0]) == int(model.size[0])


def test_cases_cover_every_branch():
    """The seeded cases reach bankrupt, solvent full-close and partial closes, and both sides: else the
    to-the-wei test above would not be checking those branches."""
    cases = [_case(s) for s in range(CASES)]
    assert {c["long"] for c in cases} == {True, False}
    lev = [c["size"] / WAD * 3000 / c["collateral_usd"] for c in cases]
    bankrupt = [c["move"] > 1 / lv for c, lv in zip(cases, lev)]
    assert any(bankrupt) and not all(bankrupt)
    assert any(c["elapsed"] for c in cases)
