"""Keeper layer: scan accounts, price the Dutch auction, rank ADL counterparties and run the
liquidation policy (bots/keeper.py is the silverback entry point). Uses backstop.client."""

from backstop.keeper.liquidator import (
    AccountStatus,
    Action,
    AdlCandidate,
    AuctionQuote,
    Report,
    adl_candidates,
    auction_over,
    auction_quote,
    depositors,
    gas_cost_in_quote,
    health,
    liquidate_all,
    profitable_positions,
    scan,
    uncovered_loss,
)

__all__ = [
    "AccountStatus",
    "Action",
    "AdlCandidate",
    "AuctionQuote",
    "Report",
    "adl_candidates",
    "auction_over",
    "auction_quote",
    "depositors",
    "gas_cost_in_quote",
    "health",
    "liquidate_all",
    "profitable_positions",
    "scan",
    "uncovered_loss",
]
