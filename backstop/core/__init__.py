"""Core layer: units and fixed-point rounding, ABI words, EIP-712 orders, deployment
configuration and the vault's margin arithmetic. Pure Python: never imports ape (nor any
other backstop layer), so it can be used off-chain and without a provider."""

from backstop.core import abi, config, ledger, margin, orders, units

__all__ = ["abi", "config", "ledger", "margin", "orders", "units"]
