"""Admin surface of MarginVault: roles, parameter validation, events, listing."""

import ape
import pytest
from eth_utils import keccak

from backstop.client.actors import fund, trade
from backstop.core.units import wad

MISSING_ROLE = "access_control: account is missing role"
MAX_U48 = 2**48 - 1
MAX_U16 = 2**16 - 1


def _params(segment=0, im=wad("0.1"), mm=wad("0.05"), taker=5, maker=0, band=1000, oi=1_000_000, knee=0):
    return (segment, im, mm, taker, maker, band, oi, knee)


@pytest.fixture
def new_feed(project, system, deployer):
    """A mock feed registered in the oracle for the next market id."""
    market_id = system.vault.market_count()
    feed = project.MockAggregator.deploy(8, "NEW", 25 * 10**8, sender=deployer)
    system.oracle.set_feed(market_id, feed, 3600, wad("0.0001"), wad(1_000_000), sender=deployer)
    return market_id, feed


# ---------------------------------------------------------------- roles


def test_roles_of_the_deployer(vault, configurator, deployer):
    assert vault.hasRole(vault.DEFAULT_ADMIN_ROLE(), deployer)
    assert vault.hasRole(vault.GUARDIAN_ROLE(), deployer)
    assert configurator.hasRole(configurator.DEFAULT_ADMIN_ROLE(), deployer)
    assert configurator.hasRole(configurator.RISK_ADMIN_ROLE(), deployer)
    assert vault.RISK_ADMIN_ROLE() == configurator.RISK_ADMIN_ROLE() == keccak(text="RISK_ADMIN_ROLE")
    assert vault.GUARDIAN_ROLE() == keccak(text="GUARDIAN_ROLE")


def test_only_the_configurator_holds_the_vaults_risk_admin_role(vault, configurator, deployer):
    """The vault's raw setters trust their caller to have validated and packed the values."""
    assert vault.hasRole(vault.RISK_ADMIN_ROLE(), configurator)
    assert not vault.hasRole(vault.RISK_ADMIN_ROLE(), deployer)
    assert configurator.vault() == vault.address


_VAULT_GATED = {
    "add_segment": lambda v, s, a: v.add_segment(sender=a),
    "set_market_config": lambda v, s, a: v.set_market_config(0, 1 << 8, sender=a),
    "set_segment_pool": lambda v, s, a: v.set_segment_pool(0, s.pools["majors"], sender=a),
    "set_fee_routing": lambda v, s, a: v.set_fee_routing(a, 0, sender=a),
    "transfer_position": lambda v, s, a: v.transfer_position(s.token, a, 0, 1, 1, 0, 0, False, 1, sender=a),
    "cover_bad_debt": lambda v, s, a: v.cover_bad_debt(a, 0, sender=a),
    "gate_withdrawals": lambda v, s, a: v.gate_withdrawals(0, 2**40, sender=a),
    "pause": lambda v, s, a: v.pause(sender=a),
    "unpause": lambda v, s, a: v.unpause(sender=a),
}
_CONFIGURATOR_GATED = {
    "add_segment": lambda c, s, a: c.add_segment("x", sender=a),
    "add_market": lambda c, s, a: c.add_market("X-PERP", 0, _params(), sender=a),
    "set_market_params": lambda c, s, a: c.set_market_params(0, _params(), sender=a),
    "set_segment_pool": lambda c, s, a: c.set_segment_pool(0, s.pools["majors"], sender=a),
    "set_pool_fee_share": lambda c, s, a: c.set_pool_fee_share(1000, sender=a),
    "set_treasury": lambda c, s, a: c.set_treasury(a, sender=a),
}


@pytest.mark.parametrize("name", sorted(_VAULT_GATED))
def test_vault_admin_functions_reject_unauthorized_accounts(system, vault, attacker, name):
    with ape.reverts(MISSING_ROLE):
        _VAULT_GATED[name](vault, system, attacker)


@pytest.mark.parametrize("name", ["add_segment", "set_market_config", "set_segment_pool", "set_fee_routing"])
def test_vault_raw_setters_reject_even_the_vault_admin(system, vault, deployer, name):
    """Validation lives in the Configurator: nobody else, not even DEFAULT_ADMIN_ROLE, writes
    an unchecked word into the vault."""
    with ape.reverts(MISSING_ROLE):
        _VAULT_GATED[name](vault, system, deployer)


@pytest.mark.parametrize("name", sorted(_CONFIGURATOR_GATED))
def test_configurator_functions_reject_unauthorized_accounts(system, configurator, attacker, name):
    with ape.reverts(MISSING_ROLE):
        _CONFIGURATOR_GATED[name](configurator, system, attacker)


def test_risk_admin_cannot_use_default_admin_functions(system, vault, configurator, deployer, keeper):
    configurator.grantRole(configurator.RISK_ADMIN_ROLE(), keeper, sender=deployer)
    configurator.add_segment("by-risk-admin", sender=keeper)  # allowed
    with ape.reverts(MISSING_ROLE):
        configurator.set_segment_pool(0, system.pools["majors"], sender=keeper)
    with ape.reverts(MISSING_ROLE):
        configurator.set_treasury(keeper, sender=keeper)
    with ape.reverts(MISSING_ROLE):
        vault.pause(sender=keeper)


def test_guardian_can_pause_but_not_unpause(vault, deployer, keeper):
    vault.grantRole(vault.GUARDIAN_ROLE(), keeper, sender=deployer)
    vault.pause(sender=keeper)
    assert vault.paused()
    with ape.reverts(MISSING_ROLE):
        vault.unpause(sender=keeper)
    vault.unpause(sender=deployer)
    assert not vault.paused()


def test_revoked_risk_admin_loses_access(configurator, deployer, keeper):
    role = configurator.RISK_ADMIN_ROLE()
    configurator.grantRole(role, keeper, sender=deployer)
    configurator.revokeRole(role, keeper, sender=deployer)
    with ape.reverts(MISSING_ROLE):
        configurator.add_segment("x", sender=keeper)


def test_pause_twice_and_unpause_when_live_revert(vault, deployer):
    with ape.reverts("pausable: contract is not paused"):
        vault.unpause(sender=deployer)
    vault.pause(sender=deployer)
    with ape.reverts("pausable: contract is paused"):
        vault.pause(sender=deployer)


# ---------------------------------------------------------------- segments


def test_add_segment_returns_next_id_and_emits_event(vault, configurator, lens, deployer):
    count = vault.segment_count()
    tx = configurator.add_segment("rates", sender=deployer)
    assert tx.return_value == count
    assert vault.segment_count() == count + 1
    (event,) = configurator.SegmentAdded.from_receipt(tx)
    assert (event.segment, event.label) == (count, "rates")
    assert lens.segment_markets(count) == []


def test_new_segment_accepts_deposits(system, vault, configurator, deployer, trader, usd):
    segment = configurator.add_segment("rates", sender=deployer).return_value
    fund(system, trader, segment, usd(5))
    assert vault.collateral(trader, segment) == usd(5)


def test_too_many_segments_reverts(vault, configurator, deployer):
    for i in range(32 - vault.segment_count()):
        configurator.add_segment(f"s{i}", sender=deployer)
    assert vault.segment_count() == 32
    with ape.reverts("configurator: too many segments"):
        configurator.add_segment("one too many", sender=deployer)


# ---------------------------------------------------------------- markets


def test_add_market_lists_it_and_emits_events(system, vault, configurator, lens, deployer, alts, new_feed):
    market_id, _ = new_feed
    params = _params(segment=99, im=wad("0.2"), mm=wad("0.1"), taker=7, maker=2, band=2500, oi=12_345, knee=300)
    tx = configurator.add_market("DOGE-PERP", alts, params, sender=deployer)
    assert tx.return_value == market_id
    assert vault.market_count() == market_id + 1
    assert lens.segment_markets(alts) == [system.markets["SOL-PERP"].id, market_id]
    (added,) = configurator.MarketAdded.from_receipt(tx)
    assert (added.market, added.segment, added.label) == (market_id, alts, "DOGE-PERP")
    (set_,) = configurator.MarketParamsSet.from_receipt(tx)
    assert (set_.market, set_.im_ratio, set_.mm_ratio, set_.taker_fee_bps, set_.maker_fee_bps,
            set_.price_band_bps, set_.max_open_interest, set_.size_knee) == (
        market_id, wad("0.2"), wad("0.1"), 7, 2, 2500, 12_345, 300)
    # params.segment is ignored: the market belongs to the segment argument
    assert tuple(lens.market(market_id)) == (alts, wad("0.2"), wad("0.1"), 7, 2, 2500, 12_345, 300)


def test_new_market_is_tradeable(system, vault, configurator, lens, deployer, maker, trader, alts, usd, new_feed):
    market_id, _ = new_feed
    configurator.add_market("DOGE-PERP", alts, _params(), sender=deployer)
    for who in (maker, trader):
        fund(system, who, alts, usd(1000))
    trade(system, maker, trader, market_id, wad(100), wad(25))
    assert vault.position(maker, market_id) == (wad(100), usd(2500))
    assert lens.margin_requirements(maker, alts) == (usd(250), usd(125))


def test_add_market_without_feed_reverts(vault, configurator, deployer, majors):
    with ape.reverts("configurator: market has no feed"):
        configurator.add_market("NOFEED-PERP", majors, _params(), sender=deployer)


def test_add_market_to_unknown_segment_reverts(vault, configurator, deployer, new_feed):
    with ape.reverts("configurator: unknown segment"):
        configurator.add_market("X-PERP", vault.segment_count(), _params(), sender=deployer)


def test_segment_full_reverts(project, system, vault, configurator, lens, deployer, majors):
    feed = project.MockAggregator.deploy(8, "F", 10**8, sender=deployer)
    listed = len(lens.segment_markets(majors))
    for _ in range(16 - listed):
        market_id = vault.market_count()
        system.oracle.set_feed(market_id, feed, 3600, 1, wad(10), sender=deployer)
        configurator.add_market(f"M{market_id}", majors, _params(), sender=deployer)
    markets = lens.segment_markets(majors)
    assert len(markets) == 16
    assert markets[:2] == [system.markets["ETH-PERP"].id, system.markets["BTC-PERP"].id]
    assert markets[2:] == list(range(3, 17))
    market_id = vault.market_count()
    system.oracle.set_feed(market_id, feed, 3600, 1, wad(10), sender=deployer)
    with ape.reverts("configurator: segment full"):
        configurator.add_market("M-full", majors, _params(), sender=deployer)


@pytest.mark.parametrize(
    "params, reason",
    [
        (_params(mm=0), "configurator: bad margin ratios"),
        (_params(im=wad("0.05"), mm=wad("0.05")), "configurator: bad margin ratios"),
        (_params(im=wad("0.05"), mm=wad("0.06")), "configurator: bad margin ratios"),
        (_params(im=wad(1) + 1, mm=wad("0.5")), "configurator: bad margin ratios"),
        (_params(taker=101), "configurator: fee too high"),
        (_params(maker=101), "configurator: fee too high"),
        (_params(band=0), "configurator: bad price band"),
        (_params(band=5001), "configurator: bad price band"),
        (_params(oi=0), "configurator: bad open interest cap"),
        (_params(oi=MAX_U48 + 1), "configurator: bad open interest cap"),
        (_params(knee=MAX_U16 + 1), "configurator: bad size knee"),
    ],
    ids=["mm_zero", "mm_eq_im", "mm_gt_im", "im_gt_one", "taker_fee", "maker_fee", "band_zero", "band_high",
         "oi_zero", "oi_overflow", "knee_overflow"],
)
def test_bad_market_params_revert(system, vault, configurator, deployer, eth, majors, new_feed, params, reason):
    with ape.reverts(reason):
        configurator.set_market_params(eth.id, params, sender=deployer)
    with ape.reverts(reason):
        configurator.add_market("X-PERP", majors, params, sender=deployer)


def test_market_params_at_their_limits_are_accepted(vault, configurator, lens, deployer, eth, majors):
    limits = (majors, wad(1), wad(1) - 1, 100, 100, 5000, MAX_U48, MAX_U16)
    configurator.set_market_params(eth.id, limits, sender=deployer)
    assert tuple(lens.market(eth.id)) == limits


def test_set_market_params_updates_but_keeps_segment(system, vault, configurator, lens, deployer, eth, majors, alts):
    tx = configurator.set_market_params(eth.id, _params(segment=alts, im=wad("0.25"), mm=wad("0.125"), band=300), sender=deployer)
    market = lens.market(eth.id)
    assert market.segment == majors
    assert (market.im_ratio, market.mm_ratio, market.price_band_bps) == (wad("0.25"), wad("0.125"), 300)
    (event,) = configurator.MarketParamsSet.from_receipt(tx)
    assert (event.market, event.im_ratio, event.price_band_bps) == (eth.id, wad("0.25"), 300)


def test_new_margin_ratios_apply_to_open_positions(open_eth, vault, configurator, lens, deployer, maker, eth, majors, usd):
    configurator.set_market_params(eth.id, _params(segment=majors, im=wad("0.2"), mm=wad("0.15")), sender=deployer)
    assert lens.margin_requirements(maker, majors) == (usd(6000), usd(4500))


def test_set_market_params_unknown_market_reverts(vault, configurator, deployer):
    with ape.reverts("vault: unknown market"):
        configurator.set_market_params(vault.market_count(), _params(), sender=deployer)


def test_market_view_of_unknown_market_reverts(vault, lens):
    with ape.reverts("vault: unknown market"):
        lens.market(vault.market_count())


# ---------------------------------------------------------------- oracle and treasury


def test_oracle_is_fixed_at_deployment(system, vault):
    assert vault.oracle() == system.oracle.address
    assert not hasattr(vault, "set_oracle")


def test_set_treasury_and_event(vault, configurator, deployer, other):
    tx = configurator.set_treasury(other, sender=deployer)
    assert vault.treasury() == other.address
    (event,) = configurator.TreasurySet.from_receipt(tx)
    assert event.treasury == other.address


def test_set_treasury_zero_reverts(vault, configurator, deployer):
    with ape.reverts("configurator: zero treasury"):
        configurator.set_treasury(ape.utils.ZERO_ADDRESS, sender=deployer)


# ---------------------------------------------------------------- pool wiring


def test_segment_pools_are_wired_by_deployment(system, vault):
    for label, segment in system.segments.items():
        assert vault.segment_pool(segment) == system.pools[label].address


def test_set_segment_pool_and_event(system, vault, configurator, deployer, majors, alts):
    tx = configurator.set_segment_pool(majors, system.pools["alts"], sender=deployer)
    assert vault.segment_pool(majors) == system.pools["alts"].address
    (event,) = configurator.SegmentPoolSet.from_receipt(tx)
    assert (event.segment, event.pool) == (majors, system.pools["alts"].address)


def test_set_segment_pool_unknown_segment_reverts(system, vault, configurator, deployer):
    with ape.reverts("configurator: unknown segment"):
        configurator.set_segment_pool(vault.segment_count(), system.pools["majors"], sender=deployer)


def test_set_segment_pool_with_other_asset_reverts(system, system18, vault, configurator, deployer, majors):
    with ape.reverts("configurator: pool asset mismatch"):
        configurator.set_segment_pool(majors, system18.pools["majors"], sender=deployer)


def test_set_pool_fee_share_and_event(vault, configurator, deployer):
    tx = configurator.set_pool_fee_share(10_000, sender=deployer)
    assert vault.pool_fee_share_bps() == 10_000
    (event,) = configurator.PoolFeeShareSet.from_receipt(tx)
    assert event.share_bps == 10_000


def test_set_pool_fee_share_above_100_percent_reverts(vault, configurator, deployer):
    with ape.reverts("configurator: bad fee share"):
        configurator.set_pool_fee_share(10_001, sender=deployer)
