"""Backstop keeper bot (silverback): one `backstop.keeper.Keeper` run per block.

Each block: learn new accounts from the block's events, scan every active account in one JSON-RPC batch
(health_of chunks of 128), price the liquidatable positions, send them as engine.liquidate_batch
transactions without waiting for receipts (the engine skips items another keeper won), then hand the
waterfall's tail (bad debt on flat accounts, deficits beyond the pools) to the sequential policy. The
handler never raises for a revert, a lost race or a dropped transaction: they are metrics.

    make anvil                                               # chain id 1337, 1 s blocks
    make deploy DEPLOY_ARGS="--network ethereum:local:node"  # writes deployments/local-1337.json
    make keeper                                              # TEST::3 signs, 100,000 of margin per segment

The signer needs gas and a margin account in every segment it liquidates in (it takes positions over):
on startup the bot tops its free margin up to KEEPER_MARGIN quote units per segment from its wallet (on a
local chain the mock token is minted). On a live network use an ape account alias as SILVERBACK_SIGNER_ALIAS,
that network's deployment file as BACKSTOP_DEPLOYMENT, and fund the wallet with the quote token first.
KEEPER_MIN_PROFIT (quote units, default 0) skips work that does not pay for its gas.
"""

import os

from ape import chain
from silverback import SilverbackBot

from backstop.client.deploy import load_system
from backstop.keeper import Keeper, ensure_margin

bot = SilverbackBot(signer_required=True)


@bot.on_startup()
def join_deployment(startup_state):
    """Load the deployment (refused if it was written on another chain), fund the margin account, and
    learn every account since the deployment."""
    system = load_system(os.environ.get("BACKSTOP_DEPLOYMENT", "deployments/local-1337.json"))
    margin = int(os.environ.get("KEEPER_MARGIN", "0"))
    deposited = ensure_margin(system, bot.signer, margin) if margin else {}
    bot.state.keeper = Keeper(system, bot.signer, min_profit=int(os.environ.get("KEEPER_MIN_PROFIT", "0")))
    summary = bot.state.keeper.run(int(chain.blocks.head.number))
    return {"margin_deposited": sum(deposited.values()), **summary}


@bot.on_(chain.blocks)
def keep(block):
    """Liquidate everything that became liquidatable; returns the keeper's metrics."""
    return {"block": block.number, **bot.state.keeper.run(int(block.number))}
