"""backstop/keeper.py: scan, auction_quote, adl_candidates, liquidate_all, depositors; load_system."""

import json

import pytest
from ape import chain

from backstop import keeper as kp
from backstop.client.actors import trade
from backstop.client.deploy import DeploymentMismatch, deployment_path, load_system
from backstop.core.units import wad


@pytest.fixture
def crowd(short_eth, system, maker, trader, keeper, other, whale, attacker, eth, majors):
    """At ETH 3,350: trader (10 short on 4,000) liquidatable but solvent; other (1 short on
    310) bankrupt; whale (1 long on 500) and maker (10 long) profitable; attacker long 1 at
    3,400 (losing); keeper short (same side as the trader); everyone else healthy or flat."""
    kit = short_eth
    kit.fund(other, majors, 310)
    kit.fund(whale, majors, 500)
    kit.fund(attacker, majors, 1_000)
    trade(system, maker, other, eth.id, wad(1), wad(3000))
    trade(system, whale, keeper, eth.id, wad(1), wad(3000))
    kit.eth(3350)
    trade(system, attacker, keeper, eth.id, wad(1), wad(3400))
    return kit


def test_scan_finds_exactly_liquidatable_and_bankrupt(crowd, system, maker, trader, keeper, other, whale, attacker, lp, majors):
    owners = [maker, trader, keeper, other, whale, attacker, lp]
    found = kp.scan(system, owners, majors)
    assert [s.owner for s in found] == [other.address, trader.address]  # lowest ratio first
    by = {s.owner: s for s in found}
    assert by[other.address].bankrupt and by[other.address].liquidatable
    assert by[trader.address].liquidatable and not by[trader.address].bankrupt
    for s in kp.health(system, owners, majors):
        assert (s.owner in by) == system.lens.is_liquidatable(s.owner, majors)


def test_scan_uses_one_health_of_call(crowd, system, maker, trader, other, majors, monkeypatch):
    calls = []
    lens = system.lens
    real = lens.health_of

    class Spy:
        def __getattr__(self, name):
            return getattr(lens, name)

        def health_of(self, owners, segment):
            calls.append(len(owners))
            return real(owners, segment)

    spied = type(system)(**{**system.__dict__, "lens": Spy()})
    assert len(kp.scan(spied, [maker, trader, other], majors)) == 2
    assert calls == [3]


def test_scan_empty_and_healthy(book, system, maker, keeper, majors):
    assert kp.scan(system, [], majors) == []
    assert kp.scan(system, [maker, keeper], majors) == []


def test_auction_quote_wraps_engine_quote(crowd, system, trader, eth, majors):
    q = kp.auction_quote(system, trader, eth.id, wad(10), gas_price_wei=10**9, native_price_wad=wad(3350))
    assert (q.size, q.price, q.profit, q.full_close, q.keeper_fee) == tuple(
        system.engine.liquidation_quote(trader, eth.id, wad(10))
    )
    assert q.full_close and q.keeper_fee == crowd.usd(2) - q.profit  # t = 0: the floor tops up
    # 200,000 gas x 1 gwei x 3,350 = 0.67 quote units
    assert q.gas_cost == crowd.usd("0.67")
    assert q.net_profit == q.profit + q.keeper_fee - q.gas_cost


def test_adl_candidates_ranked_by_upnl_times_leverage(crowd, system, maker, keeper, whale, attacker, other, trader, eth, majors):
    ranked = kp.adl_candidates(system, [maker, keeper, whale, attacker, other, trader], eth.id, -1)
    # only profitable longs: attacker loses, keeper/other/trader are shorts
    assert [c.owner for c in ranked] == [whale.address, maker.address]
    mark = wad(3350)
    for c in ranked:
        h = crowd.health(c.owner, majors)
        size, entry = system.vault.position(c.owner, eth.id)
        upnl = size * mark // crowd.scale - entry
        assert c.upnl == upnl > 0
        assert c.score == upnl * h.notional // h.equity
        assert c.score == system.engine.adl_score(c.owner, eth.id)  # same rank on chain
    assert ranked[0].score > ranked[1].score
    # losing and flat positions score 0 on chain
    assert system.engine.adl_score(attacker, eth.id) == 0
    assert system.engine.adl_score("0x000000000000000000000000000000000000dEaD", eth.id) == 0
    # and for a bankrupt long the shorts are candidates (none profitable here: all sold at 3,000)
    assert kp.adl_candidates(system, [keeper, trader, other], eth.id, +1) == []


def test_liquidate_all_liquidates_and_falls_back_to_deleverage(crowd, system, keeper, maker, trader, other, whale, attacker, eth, majors, accounts):
    owners = [maker, trader, other, whale, attacker]
    report = kp.liquidate_all(system, keeper, owners, majors)
    # no redundant flag: liquidate starts the solvent trader's auction itself; only the account whose
    # deficit the pools cannot pay is flagged, which gates the segment's withdrawals before ADL
    assert {a.owner for a in report.of("flag")} == {other.address}
    first = next(a for a in report.of("liquidate") if a.owner == trader.address)
    assert [e.owner for e in first.receipt.decode_logs(system.engine.Flagged)] == [trader.address]
    # the trader is solvent: liquidated by the keeper; other is bankrupt with empty pools, so
    # its deficit is uncovered: the keeper deleverages it against the top-ranked whale first
    assert any(a.owner == trader.address for a in report.of("liquidate"))
    assert not [a for a in report.of("liquidate") if a.owner == other.address]
    assert not report.of("error")
    (adl,) = [a for a in report.of("deleverage") if a.owner == other.address]
    assert adl.counterparty == whale.address and adl.size == wad(1)
    # the event records the counterparty's rank when it was chosen: the best candidate's
    (event,) = adl.receipt.decode_logs(system.engine.Deleveraged)
    assert event.counterparty_score > 0 and event.counterparty == whale.address
    assert system.vault.position(other, eth.id)[0] == 0
    assert kp.scan(system, owners, majors) == [] or all(not s.liquidatable for s in kp.scan(system, owners, majors))
    everyone = list(accounts[:10])
    crowd.positions_sum_to_zero(everyone, eth.id)
    crowd.conservation(everyone)


def test_depositors_lists_every_account_that_deposited(funded, system, maker, trader, majors, alts):
    found = kp.depositors(system)
    assert {maker.address, trader.address} <= found[majors]
    assert {maker.address, trader.address} <= found[alts]


def test_load_system_joins_a_saved_deployment(system, tmp_path, maker, eth):
    path = tmp_path / "local.json"
    system.save(path)
    joined = load_system(path)
    assert joined.addresses() == system.addresses()
    assert joined.vault.position(maker, eth.id) == system.vault.position(maker, eth.id)
    assert joined.markets["ETH-PERP"].feed.address == system.markets["ETH-PERP"].feed.address


def test_load_system_refuses_a_file_of_another_chain(system, tmp_path):
    path = tmp_path / "local-31337.json"
    system.save(path)
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "chain_id": raw["chain_id"] + 1}))
    with pytest.raises(DeploymentMismatch, match="is a deployment on chain"):
        load_system(path)
    path.write_text(json.dumps({k: v for k, v in raw.items() if k != "chain_id"}))
    with pytest.raises(DeploymentMismatch):
        load_system(path)


def test_deployment_files_are_keyed_by_chain_id(tmp_path):
    assert deployment_path(tmp_path) == tmp_path / f"local-{chain.chain_id}.json"
