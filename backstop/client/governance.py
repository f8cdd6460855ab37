"""Timelocked governance (docs/design.md, invariant 10): hand every admin role to the Timelock and
route parameter changes through schedule -> delay -> execute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ape import chain
from ape.api import AccountAPI, ReceiptAPI
from ape.contracts import ContractInstance
from eth_utils import keccak

if TYPE_CHECKING:  # deploy imports this module
    from backstop.client.deploy import System

ZERO_BYTES32 = b"\x00" * 32

# Roles that change parameters or wiring: they belong to the timelock after hand-over.
ADMIN_ROLES = ("DEFAULT_ADMIN_ROLE", "RISK_ADMIN_ROLE", "FEED_ADMIN_ROLE")
GUARDIAN_ROLE = "GUARDIAN_ROLE"


class HandOverError(RuntimeError):
    """The deployer still holds an admin role after the hand-over."""


def governed_by_label(system: System) -> dict[str, ContractInstance]:
    """{label: contract} of every contract whose roles the timelock takes over."""
    return {
        "vault": system.vault,
        "configurator": system.configurator,
        "engine": system.engine,
        "oracle": system.oracle,
        **{f"pool[{label}]": pool for label, pool in system.pools.items()},
        "backstop": system.backstop,
        **({"liquidator": system.liquidator} if system.liquidator is not None else {}),
        **({"risk": system.risk} if system.risk is not None else {}),
    }


def governed_contracts(system: System) -> list[ContractInstance]:
    return list(governed_by_label(system).values())


def _roles(contract: ContractInstance, names: Iterable[str]) -> list[bytes]:
    return [getattr(contract, name)() for name in names if hasattr(contract, name)]


def role_names(contract: ContractInstance) -> list[str]:
    """Every role the contract defines, read from its ABI (the public `*_ROLE` constants),
    so a role added to a contract later is covered without editing a list here."""
    return sorted(
        abi.name
        for abi in contract.contract_type.view_methods
        if abi.name.endswith("_ROLE") and not abi.inputs
    )


def roles_held(contract: ContractInstance, account: str) -> list[str]:
    return [name for name in role_names(contract) if contract.hasRole(getattr(contract, name)(), account)]


def admin_roles_held(system: System, account: str) -> dict[str, list[str]]:
    """{contract label: roles} of every admin role `account` holds (empty dict: none).

    Admin means any role but GUARDIAN_ROLE (pause only) on the governed contracts, and
    DEFAULT_ADMIN_ROLE on the timelock; its proposer, canceller and executor roles are the
    timelocked process itself and are given only to the accounts the config names."""
    held = {label: [r for r in roles_held(c, account) if r != GUARDIAN_ROLE]
            for label, c in governed_by_label(system).items()}
    held["timelock"] = [r for r in roles_held(system.timelock, account) if r == "DEFAULT_ADMIN_ROLE"]
    return {label: roles for label, roles in held.items() if roles}


def hand_over_to_timelock(system: System, deployer: AccountAPI, guardian: str | None = None) -> None:
    """Grant every admin role to the timelock and the pause role to `guardian`, then the
    deployer renounces all of them (it keeps GUARDIAN_ROLE only if it is the guardian).
    Raises HandOverError if the deployer still holds an admin role afterwards."""
    timelock = system.timelock.address
    guardian = guardian or deployer.address
    for contract in governed_contracts(system):
        admin_roles = _roles(contract, ADMIN_ROLES)
        guardian_roles = _roles(contract, (GUARDIAN_ROLE,))
        for role in admin_roles:
            # only what the deployer holds: the vault's RISK_ADMIN_ROLE stays with the
            # Configurator and RiskParams, contracts that validate what they write (its raw
            # setters skip that validation, so no account may hold it)
            if contract.hasRole(role, deployer.address):
                contract.grantRole(role, timelock, sender=deployer)
        for role in guardian_roles:
            if guardian != deployer.address:
                contract.grantRole(role, guardian, sender=deployer)
        # DEFAULT_ADMIN_ROLE last: renouncing it first would forbid nothing here, but keeping
        # the order explicit makes the hand-over easy to audit.
        for role in reversed(admin_roles):
            if contract.hasRole(role, deployer.address):
                contract.renounceRole(role, deployer.address, sender=deployer)
        for role in guardian_roles:
            if guardian != deployer.address and contract.hasRole(role, deployer.address):
                contract.renounceRole(role, deployer.address, sender=deployer)
    # Read the chain back rather than trust the loop above: a role added to a contract but
    # not to ADMIN_ROLES would otherwise stay with the deployer unnoticed.
    left = admin_roles_held(system, deployer.address)
    if left:
        raise HandOverError(f"the deployer {deployer.address} still holds admin roles: {left}")


def operation_salt(label: str) -> bytes:
    return keccak(text=label)


def schedule(system: System, proposer: AccountAPI, target: ContractInstance | str, calldata: bytes, salt: bytes,
             delay: int | None = None) -> ReceiptAPI:
    """Propose `calldata` on `target`; it becomes executable after the minimum delay."""
    delay = int(system.timelock.get_minimum_delay()) if delay is None else delay
    return system.timelock.schedule(target, 0, calldata, ZERO_BYTES32, salt, delay, sender=proposer)


def execute(system: System, executor: AccountAPI, target: ContractInstance | str, calldata: bytes,
            salt: bytes) -> ReceiptAPI:
    return system.timelock.execute(target, 0, calldata, ZERO_BYTES32, salt, sender=executor)


def govern(system: System, proposer: AccountAPI, target: ContractInstance | str, calldata: bytes,
           label: str) -> ReceiptAPI:
    """Schedule, wait out the delay on a local chain, execute. Returns the execute receipt."""
    salt = operation_salt(label)
    schedule(system, proposer, target, calldata, salt)
    chain.pending_timestamp += int(system.timelock.get_minimum_delay())
    return execute(system, proposer, target, calldata, salt)
