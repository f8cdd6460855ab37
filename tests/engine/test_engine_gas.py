"""Gas of the engine's entry points, whole transaction (receipt.gas_used)."""

from backstop.units import wad

GAS: dict[str, int] = {}


def _record(name, receipt, bound):
    GAS[name] = int(receipt.gas_used)
    print(f"\nGAS {name}: {receipt.gas_used}")
    assert receipt.gas_used < bound


def test_gas_flag_and_partial_liquidate(short_eth, kit, engine, trader, keeper, eth, majors):
    kit.eth(3300)
    _record("flag", engine.flag(trader, majors, sender=keeper), 100_000)
    _record("liquidate_partial", engine.liquidate(trader, eth.id, wad(10), sender=keeper), 250_000)


def test_gas_liquidate_bankrupt_with_cover(short_eth, system, kit, engine, trader, keeper, lp, eth):
    kit.seed(system.pools["majors"], kit.usd(50_000), lp)
    kit.eth(3600)
    _record("liquidate_bankrupt_cover", engine.liquidate(trader, eth.id, wad(10), sender=keeper), 350_000)


def test_gas_deleverage(short_eth, kit, engine, trader, maker, keeper, eth):
    kit.eth(3600)
    _record("deleverage", engine.deleverage(trader, eth.id, maker, wad(10), sender=keeper), 350_000)
