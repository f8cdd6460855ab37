"""The keeper's side of pools at work (backstop/keeper/liquidator.py, docs/pools.md): an auction nobody took goes
to the liquidator of last resort before ADL, the liquidator's inventory is unwound and brought home, and pools
outside their band are rebalanced."""

from ape import chain

from backstop import keeper as kp
from backstop.client.actors import trade
from backstop.core.units import wad

BACKSTOP_SEED = 400_000  # 10% market cap: 40,000 of notional, room for the trader's 10 ETH


def _unsold_long(kit, system, keeper2, trader, majors):
    """The long book at ETH 2,700 (liquidatable, solvent), flagged by a keeper with no margin (so nobody takes the
    position), the auction run out, the price republished."""
    kit.seed(system.backstop, kit.usd(BACKSTOP_SEED), keeper2)
    kit.eth(2700)
    system.engine.flag(trader, majors, sender=keeper2)
    chain.pending_timestamp += int(system.engine.params().auction_duration) + 1
    kit.eth(2700)


def _passes(run, limit: int = 20) -> list:
    """Run a keeper pass until it sends nothing; every action of every pass."""
    actions = []
    for _ in range(limit):
        report = run()
        actions += report.actions
        if not [a for a in report.actions if a.kind != "error"]:
            break
    return actions


def test_unsold_auction_goes_to_the_liquidator_not_to_adl(long_eth, system, keeper, keeper2, trader, maker, eth,
                                                           majors):
    kit = long_eth
    _unsold_long(kit, system, keeper2, trader, majors)
    maker_position = int(system.vault.position(maker, eth.id)[0])
    actions = _passes(lambda: kp.liquidate_all(system, keeper2, [trader], majors, adl_pool=[maker]))
    kinds = [a.kind for a in actions]
    assert "takeover" in kinds and "deleverage" not in kinds, kinds
    liquidator = system.liquidator.address
    taken = int(system.vault.position(liquidator, eth.id)[0])
    assert taken > 0  # the trader's long, now the backstop's inventory
    assert int(system.vault.position(trader, eth.id)[0]) == 10 * 10**18 - taken
    assert not system.lens.is_liquidatable(trader, majors)
    assert int(system.vault.position(maker, eth.id)[0]) == maker_position  # the winner was not deleveraged
    kit.conservation([trader, maker, keeper, keeper2])


def test_without_a_liquidator_the_policy_falls_back_to_adl(long_eth, system, keeper2, trader, maker, eth, majors,
                                                           deployer, monkeypatch):
    kit = long_eth
    _unsold_long(kit, system, keeper2, trader, majors)
    system.engine.set_liquidator("0x0000000000000000000000000000000000000000", sender=deployer)
    actions = _passes(lambda: kp.liquidate_all(system, keeper2, [trader], majors, adl_pool=[maker]))
    kinds = [a.kind for a in actions]
    assert "deleverage" in kinds and "takeover" not in kinds, kinds
    assert int(system.vault.position(system.liquidator, eth.id)[0]) == 0


def test_unwind_offers_the_inventory_back_and_reclaims_the_flat_account(long_eth, system, keeper, keeper2, trader,
                                                                         maker, eth, majors):
    kit = long_eth
    _unsold_long(kit, system, keeper2, trader, majors)
    _passes(lambda: kp.liquidate_all(system, keeper2, [trader], majors, adl_pool=[maker]))
    liquidator, backstop = system.liquidator, system.backstop
    assert int(backstop.deployed()) > 0
    inventory = int(system.vault.position(liquidator, eth.id)[0])
    keeper_before = int(system.vault.position(keeper, eth.id)[0])
    actions = _passes(lambda: kp.unwind_inventory(system, keeper, majors))
    kinds = [a.kind for a in actions]
    assert "unwind" in kinds and "reclaim" in kinds, kinds
    assert int(system.vault.position(liquidator, eth.id)[0]) == 0
    assert int(system.vault.position(keeper, eth.id)[0]) == keeper_before + inventory  # the keeper took it all
    assert int(backstop.deployed()) == 0 and list(liquidator.accounts()) == []
    assert int(liquidator.book(system.vault, majors)) == 0
    kit.conservation([trader, maker, keeper, keeper2])


def test_unwind_is_a_no_op_without_inventory(book, system, keeper, majors):
    assert kp.unwind_inventory(system, keeper, majors).actions == []


def test_rebalance_pools_acts_only_on_pools_outside_their_band(book, system, deployer, maker, trader, lp, keeper,
                                                               eth, majors):
    pool, alts_pool = system.pools["majors"], system.pools["alts"]
    book.seed(pool, book.usd(10_000), lp)
    book.seed(alts_pool, book.usd(10_000), lp)
    pool.set_target_size(book.usd(9_000), sender=deployer)
    book.fund(trader, majors, 10_000)
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    system.vault.sweep_fees(majors, sender=keeper)  # the fees vest in the pool: unvested income above the target
    unvested = int(pool.unvested_income())
    assert unvested > 0
    report = kp.rebalance_pools(system, keeper)
    assert [(a.kind, a.owner) for a in report.actions] == [("rebalance", pool.address)]
    (moved,) = report.actions[0].receipt.decode_logs(pool.Rebalanced)
    assert int(moved.to_backstop) + int(moved.to_treasury) == unvested
    assert kp.rebalance_pools(system, keeper).actions == []  # nothing left to send: inside the band
