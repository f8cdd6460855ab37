from backstop.client.actors import trade
from backstop.core.units import wad


def test_fill_opens_opposite_positions(open_eth, vault, maker, trader, eth):
    assert vault.position(maker, eth.id)[0] == wad(10)
    assert vault.position(trader, eth.id)[0] == -wad(10)
