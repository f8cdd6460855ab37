"""deposit / withdraw: happy paths, validation, margin checks, hostile tokens (6 and 18 decimals)."""

import ape
import pytest

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import wad


# ---------------------------------------------------------------- deposit


def test_deposit_credits_collateral_moves_tokens_and_emits_event(any_system, trader, any_usd):
    vault, token = any_system.vault, any_system.token
    segment = any_system.segments["majors"]
    amount = any_usd(1234.5)
    token.mint(trader, amount, sender=trader)
    token.approve(vault, amount, sender=trader)
    before = token.balanceOf(vault)

    tx = vault.deposit(segment, amount, sender=trader)

    assert vault.collateral(trader, segment) == amount
    assert token.balanceOf(vault) == before + amount
    assert token.balanceOf(trader) == 0
    events = vault.Deposit.from_receipt(tx)
    assert len(events) == 1
    assert events[0].owner == trader.address
    assert events[0].segment == segment
    assert events[0].amount == amount


def test_deposits_accumulate_per_segment(any_system, trader, any_usd):
    vault = any_system.vault
    majors, alts = any_system.segments["majors"], any_system.segments["alts"]
    fund(any_system, trader, majors, any_usd(100))
    fund(any_system, trader, majors, any_usd(50))
    fund(any_system, trader, alts, any_usd(7))
    assert vault.collateral(trader, majors) == any_usd(150)
    assert vault.collateral(trader, alts) == any_usd(7)


def test_deposit_zero_amount_reverts(vault, trader, majors):
    with ape.reverts("vault: zero amount"):
        vault.deposit(majors, 0, sender=trader)


def test_deposit_unknown_segment_reverts(vault, token, trader, usd):
    token.mint(trader, usd(10), sender=trader)
    token.approve(vault, usd(10), sender=trader)
    unknown = vault.segment_count()
    with ape.reverts("vault: unknown segment"):
        vault.deposit(unknown, usd(10), sender=trader)


def test_deposit_while_paused_is_allowed(vault, token, trader, deployer, majors, usd):
    """Reduce-only mode (issue 9.5): a paused vault still takes margin."""
    token.mint(trader, usd(10), sender=trader)
    token.approve(vault, usd(10), sender=trader)
    vault.pause(sender=deployer)
    vault.deposit(majors, usd(10), sender=trader)
    assert vault.collateral(trader, majors) == usd(10)


def test_deposit_without_allowance_reverts(vault, token, trader, majors, usd):
    token.mint(trader, usd(10), sender=trader)
    with ape.reverts():
        vault.deposit(majors, usd(10), sender=trader)
    assert vault.collateral(trader, majors) == 0


def test_fee_on_transfer_token_is_rejected(project, system, deployer, trader, treasury):
    fot = project.FeeOnTransferToken.deploy(6, sender=deployer)
    fot_vault = project.MarginVault.deploy(fot, system.oracle, treasury, sender=deployer)
    segment = 0
    fot_vault.grantRole(fot_vault.RISK_ADMIN_ROLE(), deployer, sender=deployer)  # no Configurator here
    fot_vault.add_segment(sender=deployer)
    fot.mint(trader, 10**9, sender=trader)
    fot.approve(fot_vault, 10**9, sender=trader)
    with ape.reverts("vault: fee-on-transfer token"):
        fot_vault.deposit(segment, 10**9, sender=trader)
    assert fot_vault.collateral(trader, segment) == 0
    assert fot.balanceOf(fot_vault) == 0


# Reverting deployments use accounts that deploy nothing else: ape caches the contract type
# of every address it has seen, and a failed CREATE at an address where an earlier
# (rolled-back) test deployed another contract is mis-decoded with that contract's ABI.


def test_constructor_rejects_quote_with_more_than_18_decimals(project, system, other, treasury):
    token19 = project.MockERC20.deploy("Too Precise", "TP", 19, sender=other)
    with ape.reverts("vault: quote decimals > 18"):
        project.MarginVault.deploy(token19, system.oracle, treasury, sender=other)


def test_constructor_rejects_zero_treasury(project, system, attacker):
    with ape.reverts("vault: zero treasury"):
        project.MarginVault.deploy(system.token, system.oracle, ape.utils.ZERO_ADDRESS, sender=attacker)


def test_notional_scale_matches_quote_decimals(any_system):
    assert any_system.vault.quote_decimals() == any_system.decimals
    assert any_system.vault.notional_scale() == 10 ** (36 - any_system.decimals)


# ---------------------------------------------------------------- withdraw


def test_withdraw_returns_tokens_and_emits_event(any_system, trader, any_usd):
    vault, token = any_system.vault, any_system.token
    segment = any_system.segments["alts"]
    fund(any_system, trader, segment, any_usd(1000))

    tx = vault.withdraw(segment, any_usd(400), sender=trader)

    assert vault.collateral(trader, segment) == any_usd(600)
    assert token.balanceOf(trader) == any_usd(400)
    events = vault.Withdraw.from_receipt(tx)
    assert len(events) == 1
    assert (events[0].owner, events[0].segment, events[0].amount) == (trader.address, segment, any_usd(400))


def test_withdraw_everything_without_positions(any_system, trader, any_usd):
    segment = any_system.segments["majors"]
    fund(any_system, trader, segment, any_usd(1000))
    any_system.vault.withdraw(segment, any_usd(1000), sender=trader)
    assert any_system.vault.collateral(trader, segment) == 0
    assert any_system.token.balanceOf(trader) == any_usd(1000)


def test_withdraw_zero_amount_reverts(funded, vault, trader, majors):
    with ape.reverts("vault: zero amount"):
        vault.withdraw(majors, 0, sender=trader)


def test_withdraw_unknown_segment_reverts(funded, vault, trader):
    with ape.reverts("vault: unknown segment"):
        vault.withdraw(vault.segment_count(), 1, sender=trader)


def test_withdraw_more_than_collateral_reverts(funded, vault, trader, majors, usd):
    with ape.reverts("vault: insufficient collateral"):
        vault.withdraw(majors, usd(100_000) + 1, sender=trader)


def test_withdraw_from_empty_account_reverts(funded, vault, attacker, majors):
    with ape.reverts("vault: insufficient collateral"):
        vault.withdraw(majors, 1, sender=attacker)


def test_withdraw_while_paused_reverts(funded, vault, trader, deployer, majors, usd):
    vault.pause(sender=deployer)
    with ape.reverts("pausable: contract is paused"):
        vault.withdraw(majors, usd(1), sender=trader)


def test_withdraw_works_again_after_unpause(funded, vault, trader, deployer, majors, usd):
    vault.pause(sender=deployer)
    vault.unpause(sender=deployer)
    vault.withdraw(majors, usd(1), sender=trader)
    assert vault.collateral(trader, majors) == usd(100_000) - usd(1)


def test_withdraw_down_to_exactly_initial_margin(any_funded, maker, trader, any_usd):
    """Maker long 10 ETH at 3,000 = mark: equity == collateral, IM = 10% of 30,000 = 3,000."""
    system, vault = any_funded, any_funded.vault
    lens = any_funded.lens
    eth, majors = system.markets["ETH-PERP"], system.segments["majors"]
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    im, _ = lens.margin_requirements(maker, majors)
    assert im == any_usd(3000)
    free = lens.equity(maker, majors) - im
    assert free == any_usd(97_000)

    with ape.reverts("vault: below initial margin"):
        vault.withdraw(majors, free + 1, sender=maker)
    vault.withdraw(majors, free, sender=maker)
    assert lens.equity(maker, majors) == im


def test_unrealized_profit_cannot_be_withdrawn(any_funded, maker, trader, deployer, any_usd):
    system, vault = any_funded, any_funded.vault
    lens = any_funded.lens
    eth, majors = system.markets["ETH-PERP"], system.segments["majors"]
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    set_price(system, "ETH-PERP", wad(3900), deployer)  # +9,000 unrealized for the long
    collateral = vault.collateral(maker, majors)
    equity = lens.equity(maker, majors)
    im, _ = lens.margin_requirements(maker, majors)
    assert equity == collateral + any_usd(9000)
    assert equity - (collateral + 1) >= im  # margin would allow it; only realized collateral may leave

    with ape.reverts("vault: insufficient collateral"):
        vault.withdraw(majors, collateral + 1, sender=maker)


def test_realized_profit_can_be_withdrawn(any_funded, maker, trader, deployer, any_usd):
    system, vault, token = any_funded, any_funded.vault, any_funded.token
    eth, majors = system.markets["ETH-PERP"], system.segments["majors"]
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    set_price(system, "ETH-PERP", wad(3300), deployer)
    trade(system, maker, trader, eth.id, -wad(10), wad(3300))  # close the long at 3,300 (maker fee 0)
    assert vault.collateral(maker, majors) == any_usd(103_000)

    vault.withdraw(majors, any_usd(103_000), sender=maker)
    assert token.balanceOf(maker) == any_usd(103_000)
    assert vault.collateral(maker, majors) == 0


def test_withdraw_in_one_segment_ignores_positions_of_another(funded, vault, maker, trader, eth, majors, alts, usd):
    trade(funded, maker, trader, eth.id, wad(300), wad(3000))  # IM 90,000 of maker's 100,000 in majors
    vault.withdraw(alts, usd(100_000), sender=maker)
    assert vault.collateral(maker, alts) == 0
    with ape.reverts("vault: below initial margin"):
        vault.withdraw(majors, usd(10_001), sender=maker)


def test_withdraw_checks_margin_at_current_oracle_price(funded, vault, lens, maker, trader, deployer, eth, majors, usd):
    trade(funded, maker, trader, eth.id, wad(10), wad(3000))
    set_price(funded, "ETH-PERP", wad(2000), deployer)  # maker loses 10,000
    equity = lens.equity(maker, majors)
    im, _ = lens.margin_requirements(maker, majors)
    assert equity == usd(90_000) and im == usd(2000)
    with ape.reverts("vault: below initial margin"):
        vault.withdraw(majors, usd(88_000) + 1, sender=maker)
    vault.withdraw(majors, usd(88_000), sender=maker)
    assert lens.equity(maker, majors) == im
