"""docs/design.md, invariant 10: parameters change only by their role, through the timelock; the
guardian can only pause."""

import ape
import pytest

from backstop.core.config import GovernanceSpec, SystemConfig
from backstop.client.deploy import deploy_system
from backstop.client.governance import ADMIN_ROLES, execute, governed_contracts, operation_salt, schedule
from backstop.core.units import wad

DELAY = 2 * 86400
MISSING_ROLE = "access_control: account is missing role"


@pytest.fixture(scope="module")
def governed(deployer, other, treasury, attacker):
    """A system handed over to the timelock, as on a live network; `other` is the guardian."""
    config = SystemConfig(
        treasury=treasury.address,
        governance=GovernanceSpec(timelock_delay=DELAY, guardian=other.address, hand_over=True),
    )
    return deploy_system(deployer, config)


@pytest.fixture
def guardian(other):
    return other


def new_params(system, label="ETH-PERP", im="0.2", mm="0.1"):
    market = system.markets[label]
    spec = market.spec
    return market.id, (market.segment, wad(im), wad(mm), spec.taker_fee_bps, spec.maker_fee_bps,
                       spec.price_band_bps, spec.max_open_interest, spec.size_knee)


def test_every_admin_role_belongs_to_the_timelock(governed, deployer):
    for contract in governed_contracts(governed):
        for name in ADMIN_ROLES:
            if hasattr(contract, name):
                role = getattr(contract, name)()
                assert not contract.hasRole(role, deployer.address), (contract.address, name)
                if contract == governed.vault and name == "RISK_ADMIN_ROLE":
                    # the vault's raw setters: the Configurator alone, which the timelock governs
                    assert contract.hasRole(role, governed.configurator.address)
                    assert not contract.hasRole(role, governed.timelock.address)
                    continue
                assert contract.hasRole(role, governed.timelock.address), (contract.address, name)


def test_deployer_can_no_longer_change_parameters(governed, deployer):
    market_id, params = new_params(governed)
    with ape.reverts(MISSING_ROLE):
        governed.configurator.set_market_params(market_id, params, sender=deployer)
    with ape.reverts(MISSING_ROLE):
        governed.engine.set_params(governed.engine.params(), sender=deployer)


def test_guardian_can_pause_but_not_change_parameters(governed, guardian):
    market_id, params = new_params(governed)
    with ape.reverts(MISSING_ROLE):
        governed.configurator.set_market_params(market_id, params, sender=guardian)
    with ape.reverts(MISSING_ROLE):
        governed.vault.unpause(sender=guardian)
    for contract in (governed.vault, governed.engine, governed.pools["majors"], governed.backstop):
        contract.pause(sender=guardian)
        assert contract.paused()


def test_parameter_change_waits_for_the_delay(governed, deployer, chain):
    market_id, params = new_params(governed)
    calldata = governed.configurator.set_market_params.encode_input(market_id, params)
    salt = operation_salt("raise ETH margins")
    schedule(governed, deployer, governed.configurator, calldata, salt)

    with ape.reverts("timelock_controller: operation is not ready"):
        execute(governed, deployer, governed.configurator, calldata, salt)
    assert governed.lens.market(market_id).im_ratio == wad("0.1")

    chain.pending_timestamp += DELAY
    receipt = execute(governed, deployer, governed.configurator, calldata, salt)
    assert governed.lens.market(market_id).im_ratio == wad("0.2")
    assert governed.lens.market(market_id).mm_ratio == wad("0.1")
    assert [log.market for log in receipt.decode_logs(governed.configurator.MarketParamsSet)] == [market_id]


def test_only_proposers_schedule(governed, attacker):
    market_id, params = new_params(governed)
    calldata = governed.configurator.set_market_params.encode_input(market_id, params)
    with ape.reverts(MISSING_ROLE):
        schedule(governed, attacker, governed.configurator, calldata, operation_salt("x"), DELAY)


def test_delay_shorter_than_minimum_is_refused(governed, deployer):
    market_id, params = new_params(governed)
    calldata = governed.configurator.set_market_params.encode_input(market_id, params)
    with ape.reverts("timelock_controller: insufficient delay"):
        schedule(governed, deployer, governed.configurator, calldata, operation_salt("rushed"), DELAY - 1)
