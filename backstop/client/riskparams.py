"""Deploy and wire RiskParams (volatility margin): it holds the Configurator's RISK_ADMIN_ROLE and pushes
each configured market's IM/MM ratios into the vault on every `poke`."""

from __future__ import annotations

from ape import project
from ape.api import AccountAPI
from ape.contracts import ContractInstance

from backstop.client.deploy import System
from backstop.core.volatility import VolMarginParams


def deploy_risk_params(system: System, deployer: AccountAPI,
                       markets: dict[str, VolMarginParams] | None = None) -> ContractInstance:
    """RiskParams for `system`, granted the Configurator's RISK_ADMIN_ROLE (the deployer must hold that
    role's admin: on a live network this is a timelocked operation), with `markets` configured (default: every
    market with the default VolMarginParams)."""
    risk = project.RiskParams.deploy(system.configurator, system.oracle, sender=deployer)
    role = system.configurator.RISK_ADMIN_ROLE()
    system.configurator.grantRole(role, risk, sender=deployer)
    chosen = markets if markets is not None else {label: VolMarginParams() for label in system.markets}
    for label, params in chosen.items():
        risk.configure(system.markets[label].id, params.as_tuple(), sender=deployer)
    return risk
