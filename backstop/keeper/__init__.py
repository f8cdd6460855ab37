"""Keeper layer: scan accounts, price the Dutch auction, rank ADL counterparties and run the
liquidation policy (bots/keeper.py is the silverback entry point). Uses backstop.client.

`Keeper` is the bot's engine (batched, non-blocking, metrics); `liquidate_all` the sequential policy it
hands the waterfall's tail to (flag, settle, takeover, ADL); `unwind_inventory` and `rebalance_pools` keep
the pools at work (the backstop liquidator's inventory offered back, pools moved toward their band)."""

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
    rebalance_pools,
    scan,
    uncovered_loss,
    unwind_inventory,
)
from backstop.keeper.runner import Keeper, Metrics, Order, ensure_margin
from backstop.keeper.watch import LENS_BATCH, Watchlist

__all__ = [
    "Keeper",
    "LENS_BATCH",
    "Metrics",
    "Order",
    "Watchlist",
    "ensure_margin",
    "AccountStatus",
    "Action",
    "AdlCandidate",
    "AuctionQuote",
    "Report",
    "adl_candidates",
    "rebalance_pools",
    "unwind_inventory",
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
